package api

import _ "embed"

// Spec is the API's OpenAPI 3.1 description, served at /v1/openapi.yaml.
//
//go:embed openapi.yaml
var Spec []byte
