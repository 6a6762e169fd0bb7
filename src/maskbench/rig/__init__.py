"""Real-time multi-camera replay: can the robot's computer keep up with its cameras (docs/rig.md)."""
