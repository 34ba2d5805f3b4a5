package gokuai

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"bridge/drivers"
)

// Login implements drivers.Loginer for `bridge login`: a password login
// with the configured username and password, or, when none is
// configured, with the ones typed on the terminal (the password without
// echo when stdin is one). Only the tokens are stored, under the mount's
// state dir; the password is kept nowhere.
func (d *Driver) Login(ctx context.Context, out io.Writer, opts drivers.LoginOptions) error {
	user, password := d.opts.Username, d.opts.Password
	if password == "" {
		if opts.In == nil {
			return errors.New("gokuai: login: no password configured and no terminal to ask for one")
		}
		var err error
		if user, password, err = d.ask(opts.In, out); err != nil {
			return fmt.Errorf("gokuai: login: %w", err)
		}
	}
	tok, err := d.passwordLogin(ctx, user, password)
	if err != nil {
		return fmt.Errorf("gokuai: login: %w", err)
	}
	if err := d.tokens.Save(tok); err != nil {
		return fmt.Errorf("gokuai: login: %w", err)
	}
	fmt.Fprintln(out, "Logged in; the tokens (not the password) are stored in the mount's state folder.")
	return nil
}

// ask reads the username (shown as the configured one when there is
// one) and the password from stdin.
func (d *Driver) ask(stdin io.Reader, out io.Writer) (string, string, error) {
	in := bufio.NewReader(stdin)
	user := d.opts.Username
	if user == "" {
		fmt.Fprint(out, "Gokuai username (email or phone): ")
		line, err := in.ReadString('\n')
		if err != nil && (!errors.Is(err, io.EOF) || line == "") {
			return "", "", errors.New("no username given")
		}
		user = strings.TrimSpace(line)
	}
	fmt.Fprintf(out, "Password for %s: ", user)
	var password string
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(out)
		if err != nil {
			return "", "", fmt.Errorf("reading the password: %w", err)
		}
		password = string(b)
	} else {
		line, err := in.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", "", fmt.Errorf("reading the password: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if user == "" || password == "" {
		return "", "", errors.New("a username and a password are needed")
	}
	return user, password, nil
}
