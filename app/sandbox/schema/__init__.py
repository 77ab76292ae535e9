"""What the sandbox serves, declared: entity sets, keys and lookups, their columns, column
types and choice labels, navigation properties, and the CSDL ``$metadata``."""
