"""Pure arithmetic of homes (no database): amortization, equity, offer matching, disclosures."""
