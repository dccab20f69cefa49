"""Layer 0 of the toolkit: errors and their one-line policy, progress bars, typed configs, value
checks and the parsing of short lists. Imports nothing else of the toolkit."""
