"""Warden subpackage."""
