"""winoforge.runtime -- not built yet; see README.md for the state of each stage."""
