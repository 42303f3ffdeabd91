"""The HTTP adapter: Prequel's and Delphix's job endpoints, mapped onto the custom resources."""
