"""Small utilities every stage uses: errors, atomic files and write errors, optional packages,
the clock, the machine's description and load, the output-folder lock, the command-line names.
Standard library and numpy only."""
