"""Date and number formats for languages Django has none for (Lao, Burmese), and unambiguous ones for English."""
