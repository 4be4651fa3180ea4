# Numeric day/month/year: Django has no month names in this language.
DATE_FORMAT = "j/n/Y"
DATETIME_FORMAT = "j/n/Y H:i"
TIME_FORMAT = "H:i"
YEAR_MONTH_FORMAT = "n/Y"
MONTH_DAY_FORMAT = "j/n"
SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
FIRST_DAY_OF_WEEK = 0
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
