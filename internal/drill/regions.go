package drill

import (
	"fmt"
	"time"

	"github.com/entente-cti/entente/internal/drill/wan"
)

// Regions of the WAN drill, each with the city whose round-trip times
// stand for it: NA New York, LA São Paulo, EU Paris, EE Moscow, ME Dubai,
// AF Johannesburg, SA Mumbai, EA Tokyo, SE Singapore, OC Sydney.
var regionOf = map[string]string{}

func init() {
	for region, ccs := range map[string]string{
		"NA": "US CA MX PR",
		"LA": "BR AR CO CL VE PE EC UY BO PY CR PA DO SV GT HN TT",
		"EU": "GB DE FR IT NL ES SE CH PL BE DK AT IE NO FI PT CZ HU GR RO SK SI HR RS LT LV EE LU BG MT CY IS BA MK AL",
		"EE": "RU UA BY KZ GE AM AZ MD",
		"ME": "TR IR SA IL AE KW SY OM PS QA JO LB IQ BH",
		"AF": "ZA EG MA TN SC KE MU DZ NG GH SD CI ZM UG AO TZ CM MG MW NA LY MZ RE",
		"SA": "IN PK BD NP LK",
		"EA": "CN JP KR TW HK",
		"SE": "SG VN ID TH MY PH",
		"OC": "AU NZ",
	} {
		for _, cc := range splitFields(ccs) {
			regionOf[cc] = region
		}
	}
}

func splitFields(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
			}
			start = -1
		} else if start < 0 {
			start = i
		}
	}
	return out
}

// rttTable is the round-trip time between two regions' reference cities,
// in milliseconds, and where it comes from:
//
//   - "m": measured, from the city-to-city ping table of WonderProxy's
//     "Miles per Millisecond" (Paul Reinheimer, 9 February 2011,
//     https://wonderproxy.com/blog/miles-per-milisecond/): New York–Paris
//     77 ms, New York–Moscow 131 ms, Paris–Moscow 56 ms, New
//     York–Brisbane 246 ms, Paris–Brisbane 337 ms, Moscow–Brisbane 366
//     ms, and within a region Paris–Milan 21 ms, New York–Dallas 39 ms,
//     Brisbane–Sydney 33 ms;
//   - "e": estimated, for the pairs that table does not have: 1.5 times
//     the round trip of light in fibre (200 km/ms) over the great-circle
//     distance between the two cities. Internet paths are longer than
//     the line of sight: Bozkurt et al., "Dissecting Latency in the
//     Internet's Fiber Infrastructure" (2017) find a median of 2.1 times
//     the line of sight for the US Internet and 1.3 along fibre conduits;
//     the measured pairs above are 1.3 (New York–Paris) to 2.0
//     (Paris–Brisbane) times it.
//
// Within a country the drill uses 10 ms.
var rttTable = map[[2]string]struct {
	ms     int
	source string
}{
	{"NA", "NA"}: {39, "m"}, {"EU", "EU"}: {21, "m"}, {"OC", "OC"}: {33, "m"},
	{"LA", "LA"}: {60, "e"}, {"EE", "EE"}: {40, "e"}, {"ME", "ME"}: {40, "e"}, {"AF", "AF"}: {60, "e"},
	{"SA", "SA"}: {40, "e"}, {"EA", "EA"}: {40, "e"}, {"SE", "SE"}: {40, "e"},
	{"NA", "EU"}: {77, "m"}, {"NA", "EE"}: {131, "m"}, {"EU", "EE"}: {56, "m"},
	{"NA", "OC"}: {246, "m"}, {"EU", "OC"}: {337, "m"}, {"EE", "OC"}: {366, "m"},
	{"NA", "LA"}: {115, "e"}, {"NA", "ME"}: {165, "e"}, {"NA", "AF"}: {193, "e"}, {"NA", "SA"}: {188, "e"},
	{"NA", "EA"}: {163, "e"}, {"NA", "SE"}: {230, "e"},
	{"LA", "EU"}: {141, "e"}, {"LA", "EE"}: {177, "e"}, {"LA", "ME"}: {183, "e"}, {"LA", "AF"}: {111, "e"},
	{"LA", "SA"}: {207, "e"}, {"LA", "EA"}: {278, "e"}, {"LA", "SE"}: {240, "e"}, {"LA", "OC"}: {200, "e"},
	{"EU", "ME"}: {79, "e"}, {"EU", "AF"}: {131, "e"}, {"EU", "SA"}: {105, "e"}, {"EU", "EA"}: {146, "e"}, {"EU", "SE"}: {161, "e"},
	{"EE", "ME"}: {55, "e"}, {"EE", "AF"}: {137, "e"}, {"EE", "SA"}: {75, "e"}, {"EE", "EA"}: {112, "e"}, {"EE", "SE"}: {126, "e"},
	{"ME", "AF"}: {96, "e"}, {"ME", "SA"}: {29, "e"}, {"ME", "EA"}: {119, "e"}, {"ME", "SE"}: {88, "e"}, {"ME", "OC"}: {181, "e"},
	{"AF", "SA"}: {105, "e"}, {"AF", "EA"}: {203, "e"}, {"AF", "SE"}: {130, "e"}, {"AF", "OC"}: {166, "e"},
	{"SA", "EA"}: {101, "e"}, {"SA", "SE"}: {59, "e"}, {"SA", "OC"}: {152, "e"},
	{"EA", "SE"}: {80, "e"}, {"EA", "OC"}: {117, "e"}, {"SE", "OC"}: {95, "e"},
}

// sameCountryRTT is the round trip between two organisations of one
// country.
const sameCountryRTT = 10 * time.Millisecond

// RTT returns the round-trip floor between organisations in countries a
// and b.
func RTT(a, b string) (time.Duration, error) {
	if a == b {
		return sameCountryRTT, nil
	}
	ra, rb := regionOf[a], regionOf[b]
	if ra == "" || rb == "" {
		return 0, fmt.Errorf("no region for country %q or %q", a, b)
	}
	e, ok := rttTable[[2]string{ra, rb}]
	if !ok {
		e, ok = rttTable[[2]string{rb, ra}]
	}
	if !ok {
		return 0, fmt.Errorf("no round-trip time between regions %s and %s", ra, rb)
	}
	return time.Duration(e.ms) * time.Millisecond, nil
}

// linkOf returns the conditions of the path between organisations in
// countries a and b: the round trip of the table, jitter of a twentieth
// of it (at least 1 ms), 1% loss, and a bottleneck of 100 Mbit/s between
// national CERTs, 20 Mbit/s on a constituent's uplink.
func linkOf(a, b string, certs bool, loss float64) (wan.Link, error) {
	rtt, err := RTT(a, b)
	if err != nil {
		return wan.Link{}, err
	}
	bw := int64(20e6 / 8)
	if certs {
		bw = 100e6 / 8
	}
	return wan.Link{RTT: rtt, Jitter: max(time.Millisecond, rtt/20), Loss: loss, Bandwidth: bw}, nil
}
