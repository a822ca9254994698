"""WDL parsing, validation and inputs/outputs mapping (plain Python, no Django; coming next)."""
