package fakemounts

import (
	"bridge/tests/fakes/faults"
	gokuaifake "bridge/tests/fakes/gokuai"
)

// startGokuai serves the Gokuai fake (a personal library "个人文件" and a
// team library "Team"); the mount options carry the app's credentials and
// the account's username and password, so the driver logs in by itself
// (and keeps only tokens). The mount is the team library ("library"
// option), so that its root takes files like every other fake's; without
// the option it shows both libraries as folders and its root takes none. The
// fake's content lives in a temp folder until Close.
func startGokuai(baseURL string, cfg faults.Config) (Started, error) {
	f := gokuaifake.New()
	f.Faults.SetConfig(cfg)
	f.SetBaseURL(baseURL)
	return Started{Handler: f.Handler(), Options: map[string]any{
		"base_url":      baseURL,
		"client_id":     f.ClientID,
		"client_secret": f.ClientSecret,
		"username":      f.Username,
		"password":      f.Password,
		"library":       gokuaifake.TeamName,
	}, Close: func() { f.Close() }}, nil
}
