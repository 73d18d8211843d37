"""The test kit: small real implementations (fake exchange servers, tiny models) shared by tests."""
