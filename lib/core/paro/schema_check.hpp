#pragma once
// `paro check`: verifies an HDF5 file against the machine-readable layout in schemas/
// (paro-dump-v1.json, paro-pattern-v2.json or -v1.json by the file's paro_version, paro-stats-v1.json,
// built into the library; the vocabulary is in
// schemas/README.md). Returns every violation found, not just the first.
#include <string>
#include <vector>

namespace paro {

namespace h5 {
class File;
}

extern const char* const kDumpSchemaJson;
extern const char* const kPatternSchemaJson;    // the version paro writes
extern const char* const kPatternV1SchemaJson;  // version 1, still read
extern const char* const kStatsSchemaJson;

struct CheckResult {
    std::string format;  // "paro-dump", "paro-pattern" or "paro-stats"
    std::vector<std::string> violations;
    bool ok() const { return violations.empty(); }
};

// Throws InputError only when the file cannot be read as HDF5 at all or names no known format
// (bad input, exit 2); everything else is a violation (exit 1).
CheckResult check_file(const std::string& path);
// What a reader takes of a schema (require_schema).
struct SchemaUse {
    bool format_attribute = true;  // false: paro_format is not checked (a paro-partial read as a pattern)
    bool dataset_values = true;    // false: attributes, types and shapes only (a dump's tensors are read later)
};
// The readers' side of one definition of validity: the schema's rules applied to an open file, the
// first violation thrown as InputError(file, where, what), the line `paro check` lists for it.
void require_schema(const h5::File& f, const std::string& schema_json, const SchemaUse& use = {});

// Checks against an explicit schema (JSON text), for tests and future versions.
CheckResult check_file_against(const std::string& path, const std::string& schema_json);

}  // namespace paro
