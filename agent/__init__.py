"""The Rampart endpoint agent."""
