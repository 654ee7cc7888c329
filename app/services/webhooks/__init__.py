"""Shopify webhooks: verified and stored by the API (`inbox`), processed by the worker (`worker`)."""
