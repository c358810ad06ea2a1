"""The suite's helpers are a pytest plugin in testkit/ (the named cast, API clients, schema
checks), so none of them ships inside a production package."""
pytest_plugins = ["testkit.cast", "testkit.logs", "testkit.sessions"]
