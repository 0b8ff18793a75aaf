"""Reusable pyinfra ``@deploy`` functions and the phase files that compose them."""
