"""Running wazzap: options, services and what an operator watches."""
