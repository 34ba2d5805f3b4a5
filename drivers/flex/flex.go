// Package flex decodes the JSON fields that providers send as a number
// one time and as a string the next: ids, sizes, counts, expiries and
// error numbers. Drivers declare such a field as flex.Int or flex.ID, and
// one decoder serves them all.
package flex

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Int is a whole number given as a JSON number or as a string holding one:
// 42, "42", 4.2e1 and "42.9" (a fraction is dropped) all read as 42; null,
// "" and "null" read as 0. Anything else is an error.
type Int int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *Int) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = Int(i)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return fmt.Errorf("flex: %q is not a number", s)
	}
	*n = Int(f)
	return nil
}

// ID is text given as a JSON string or as a number: an id, or (where a
// provider is as loose with them) a name or a hash. A string reads as its
// value ("null" included), a number as its literal digits (so a large id
// loses nothing to float64), null as "". Any other JSON value (true, an
// object) is kept as its JSON text, so an odd field does not fail the
// whole answer.
type ID string

// UnmarshalJSON implements json.Unmarshaler.
func (id *ID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil { // null leaves s empty
		*id = ID(s)
		return nil
	}
	var num json.Number
	if err := json.Unmarshal(b, &num); err == nil {
		*id = ID(num.String())
		return nil
	}
	*id = ID(b)
	return nil
}
