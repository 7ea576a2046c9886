"""The ground floor: events, settings, domain models and the protocols every other package implements."""
