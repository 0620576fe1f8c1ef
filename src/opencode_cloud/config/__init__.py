"""occ's settings: where files live, the config.json schema, loading and saving."""
