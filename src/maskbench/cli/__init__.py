"""The ``maskbench`` command: the main parser (:mod:`.main`) and the shared argument groups
(:mod:`.args`); each stage keeps its own command in its ``cli.py``."""
