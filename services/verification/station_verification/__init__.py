"""The verification service: cards, their prepaid ledger, and may-this-card-charge answers."""
