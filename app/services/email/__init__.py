"""Email: templates rendered to text and HTML (render), SMTP or console delivery (sender),
the service the rest of the app calls (service), and the staff preview (preview)."""
