"""Tests of the email providers' signed webhooks."""
