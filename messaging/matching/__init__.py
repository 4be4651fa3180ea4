"""Matching: an item's entities normalised into the values that connect it to other items (`normalise`)."""
