"""HTTP building blocks below the flow model: URLs, cookies, multipart, content types."""
