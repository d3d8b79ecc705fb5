//! A container's environment: `env` and `envFrom` (ConfigMaps, Secrets, the downward API,
//! resource fields), `$(VAR)` expansion, and the service links.
