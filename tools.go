//go:build tools

// Package main's tools.go pins modules that packages still being written will
// import, so that go.mod stays stable while several of them grow at once.
package main

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/hashicorp/golang-lru/v2"
	_ "github.com/mdp/qrterminal/v3"
	_ "github.com/pquerna/otp"
	_ "github.com/rs/zerolog"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/net/webdav"
	_ "golang.org/x/oauth2"
	_ "golang.org/x/sync/singleflight"
)
