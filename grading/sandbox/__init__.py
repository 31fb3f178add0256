"""Running untrusted student code: a confined worker process spoken to over a JSON pipe."""
