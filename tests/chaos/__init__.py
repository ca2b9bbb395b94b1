"""The long chaos suite (``make chaos``); its short variants run in tests/python."""
