package flex

import (
	"encoding/json"
	"testing"
)

func TestInt(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Int
		bad  bool
	}{
		{in: `42`, want: 42},
		{in: `-7`, want: -7},
		{in: `"42"`, want: 42},
		{in: `""`, want: 0},
		{in: `null`, want: 0},
		{in: `"null"`, want: 0},
		{in: `"42.9"`, want: 42}, // a float as a string: the fraction is dropped
		{in: `42.9`, want: 42},
		{in: `4.2e1`, want: 42},
		{in: `"-1.5"`, want: -1},
		{in: `9007199254740993`, want: 9007199254740993}, // whole numbers do not go through float64
		{in: `"abc"`, bad: true},
		{in: `true`, bad: true},
		{in: `{}`, bad: true},
		{in: `"NaN"`, bad: true},
		{in: `1e300`, bad: true},
	} {
		var got struct {
			N Int `json:"n"`
		}
		err := json.Unmarshal([]byte(`{"n":`+c.in+`}`), &got)
		switch {
		case c.bad && err == nil:
			t.Errorf("%s: %d, want an error", c.in, got.N)
		case !c.bad && err != nil:
			t.Errorf("%s: %v", c.in, err)
		case !c.bad && got.N != c.want:
			t.Errorf("%s: %d, want %d", c.in, got.N, c.want)
		}
	}
}

func TestID(t *testing.T) {
	for _, c := range []struct {
		in   string
		want ID
	}{
		{`12345`, "12345"},
		{`"12345"`, "12345"},
		{`""`, ""},
		{`null`, ""},
		{`"null"`, "null"}, // a string is its value, even this one
		{`"12.5"`, "12.5"}, // a float as a string stays as it was sent
		{`12.5`, "12.5"},
		{`12345678901234567890123`, "12345678901234567890123"}, // no float64 rounding
		{`"a\"b/\u00e9"`, `a"b/é`},
		{`true`, "true"},
	} {
		var got struct {
			ID ID `json:"id"`
		}
		if err := json.Unmarshal([]byte(`{"id":`+c.in+`}`), &got); err != nil || got.ID != c.want {
			t.Errorf("%s: %q, %v; want %q", c.in, got.ID, err, c.want)
		}
	}
}

// A pointer field stays nil for null, so "absent or null" can be told
// from 0.
func TestIntPointer(t *testing.T) {
	var v struct {
		Errno *Int `json:"errno"`
	}
	if err := json.Unmarshal([]byte(`{"errno":null}`), &v); err != nil || v.Errno != nil {
		t.Fatalf("null: %v %v", v.Errno, err)
	}
	if err := json.Unmarshal([]byte(`{"errno":"-9"}`), &v); err != nil || v.Errno == nil || *v.Errno != -9 {
		t.Fatalf(`"-9": %v %v`, v.Errno, err)
	}
}
