"""Layer 0 of the toolkit: errors and their one-line policy, progress bars, typed configs, value
checks, the parsing of short lists and the row-wise matrix product
detectors score with. Imports nothing else of the toolkit."""
