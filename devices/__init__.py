"""The registry of everything placed in the region tree: villages, staff, speakers, listeners."""
