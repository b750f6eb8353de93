"""Site machinery: lab execution with a content-addressed cache, and the mkdocs plugin."""
