"""The leaderboard: every stored result (core.results) as a static site people browse.

records  what each benchmark writes into the store, and import of earlier result files
site     the static site (index, one page per benchmark and per checkpoint, provenance pages)
svg      the inline charts
"""
