// Package sensor reads network logs (Zeek TSV, Zeek JSON, Suricata EVE
// JSON and generic JSON lines) and extracts from each line the observable
// values that indicators can match: IP addresses, domain names, URLs,
// e-mail addresses and file hashes.
//
// Reading is built for speed: input is read in large blocks, split into
// chunks at line boundaries and parsed by one [Parser] per worker
// goroutine without allocating per line. Line numbers stay exact: each
// chunk knows the number of its first line. A line that cannot be parsed
// is a bad line: it is counted and reported with its file and line number,
// and reading goes on.
package sensor
