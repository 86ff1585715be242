"""Signers that post each email provider's webhooks exactly as the provider does."""
