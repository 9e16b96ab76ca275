"""django-waffle in Chimney: its migrations for the Switch and Sample tables only."""
