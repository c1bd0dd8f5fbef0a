#include "paro/schema_check.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "paro/dump.hpp"
#include "paro/error.hpp"
#include "paro/hdf5_io.hpp"
#include "paro/hdf5_probe.hpp"
#include "paro/pattern.hpp"
#include "paro/value_rules.hpp"

namespace paro {

namespace {

using nlohmann::json;
using Symbols = std::map<std::string, int64_t>;

// Integer expressions over bound symbols: + - * and '/' (ceiling division), parentheses.
class Expr {
public:
    Expr(const std::string& text, const Symbols& sym) : s_(text), sym_(sym) {}
    // nullopt when a symbol is unbound or the arithmetic overflows (then overflowed() says so).
    std::optional<int64_t> eval() {
        auto v = sum();
        skip();
        if (pos_ != s_.size()) throw std::runtime_error("bad schema expression '" + s_ + "'");
        return v;
    }
    bool overflowed() const { return overflow_; }

private:
    void skip() {
        while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    }
    std::optional<int64_t> sum() {
        auto v = product();
        for (skip(); pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-'); skip()) {
            const char op = s_[pos_++];
            auto r = product();
            int64_t out = 0;  // overflow (hostile grids): no value, and a violation for the caller
            if (!v || !r) {
                v = std::nullopt;
            } else if (op == '+' ? __builtin_add_overflow(*v, *r, &out) : __builtin_sub_overflow(*v, *r, &out)) {
                v = std::nullopt;
                overflow_ = true;
            } else {
                v = out;
            }
        }
        return v;
    }
    std::optional<int64_t> product() {
        auto v = atom();
        for (skip(); pos_ < s_.size() && (s_[pos_] == '*' || s_[pos_] == '/'); skip()) {
            const char op = s_[pos_++];
            auto r = atom();
            int64_t out = 0;
            if (!v || !r) {
                v = std::nullopt;
            } else if ((op == '/' && *r <= 0) || (op == '*' && __builtin_mul_overflow(*v, *r, &out)) ||
                       (op == '/' && __builtin_add_overflow(*v, *r - 1, &out))) {
                v = std::nullopt;
                overflow_ = true;
            } else {
                v = op == '*' ? out : out / *r;
            }
        }
        return v;
    }
    std::optional<int64_t> atom() {
        skip();
        if (pos_ < s_.size() && s_[pos_] == '(') {
            ++pos_;
            auto v = sum();
            skip();
            if (pos_ >= s_.size() || s_[pos_] != ')') throw std::runtime_error("bad schema expression '" + s_ + "'");
            ++pos_;
            return v;
        }
        const size_t start = pos_;
        while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) ++pos_;
        const std::string tok = s_.substr(start, pos_ - start);
        if (tok.empty()) throw std::runtime_error("bad schema expression '" + s_ + "'");
        if (std::isdigit(static_cast<unsigned char>(tok[0]))) {
            if (tok.size() > 18) throw std::runtime_error("bad schema expression '" + s_ + "'");
            return std::stoll(tok);
        }
        auto it = sym_.find(tok);
        if (it == sym_.end()) return std::nullopt;
        return it->second;
    }
    std::string s_;
    const Symbols& sym_;
    size_t pos_ = 0;
    bool overflow_ = false;
};

// A member name of a "decimal" group: 0, 1, ... without leading zeros.
bool decimal_name(const std::string& n) {
    return !n.empty() && n.size() <= 9 && std::all_of(n.begin(), n.end(), ::isdigit) && (n == "0" || n[0] != '0');
}

bool is_identifier(const std::string& s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    return true;
}

std::string substitute(std::string s, const std::string& l) {
    for (size_t p; (p = s.find("{l}")) != std::string::npos;) s.replace(p, 3, l);
    return s;
}

const char* class_name(h5::TypeClass c) {
    switch (c) {
        case h5::TypeClass::integer: return "integer";
        case h5::TypeClass::floating: return "float";
        case h5::TypeClass::string: return "string";
        default: return "other";
    }
}

class Checker {
public:
    Checker(const h5::File& f, const json& schema, const SchemaUse& use = {}) : f_(f), schema_(schema), use_(use) {}

    // Every violation as (where, what).
    std::vector<std::pair<std::string, std::string>> run() {
        json attrs = schema_.value("attributes", json::object());
        if (!use_.format_attribute) attrs.erase("paro_format");
        check_attributes(f_.id(), "/", attrs, "");
        const json lets = schema_.value("let", json::object());
        for (auto& [name, expr] : lets.items()) bind_expr(name, expr.get<std::string>(), "derived " + name);
        for (const auto& obj : schema_.value("objects", json::array())) check_object(obj);
        return violations_;
    }

private:
    void violation(const std::string& where, const std::string& what) { violations_.emplace_back(where, what); }

    // Binds a symbol, or checks it against its earlier value.
    void bind(const std::string& name, int64_t value, const std::string& where) {
        auto it = sym_.find(name);
        if (it == sym_.end()) sym_[name] = value;
        else if (it->second != value)
            violation(where, fmt::format("{} = {} disagrees with {} = {} found earlier", name, value, name, it->second));
    }
    void bind_expr(const std::string& name, const std::string& text, const std::string& where) {
        Expr e(text, sym_);
        if (auto v = e.eval()) bind(name, *v, where + " (" + text + ")");
        else if (e.overflowed()) violation(where + " (" + text + ")", "overflows 64-bit integers");
    }

    // narrow: a float type of at most 4 bytes, which the readers take as float32, where a value
    // past its range (a custom type with a wider exponent) is infinite.
    void check_values(const std::string& where, const json& spec, const std::vector<double>& values,
                      bool narrow = false) {
        const double largest = narrow ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
        for (double x : values) {
            if (spec.value("finite", false) && !(std::isfinite(x) && std::abs(x) <= largest))
                return violation(where, "holds NaN or Inf");
            if (spec.contains("minimum") && x < spec["minimum"].get<double>())
                return violation(where, fmt::format("value {} is below the minimum {}", x, spec["minimum"].get<double>()));
            if (spec.contains("exclusive_minimum") && !(x > spec["exclusive_minimum"].get<double>()))
                return violation(where, fmt::format("value {} must be above {}", x, spec["exclusive_minimum"].get<double>()));
            if (spec.contains("maximum") && x > spec["maximum"].get<double>())
                return violation(where, fmt::format("value {} is above the maximum {}", x, spec["maximum"].get<double>()));
            if (spec.contains("enum") && spec["enum"].is_array() && !spec["enum"].empty() && spec["enum"][0].is_number()) {
                bool found = false;
                for (const auto& e : spec["enum"]) found = found || e.get<double>() == x;
                if (!found) return violation(where, fmt::format("value {} is not one of {}", x, spec["enum"].dump()));
            }
        }
    }

    void check_shape(const std::string& where, const json& shape, const std::vector<int64_t>& actual,
                     const std::string& layer) {
        if (shape.size() != actual.size())
            return violation(where, fmt::format("has {} dimensions, expected {}", actual.size(), shape.size()));
        for (size_t i = 0; i < actual.size(); ++i) {
            if (shape[i].is_number()) {
                if (shape[i].get<int64_t>() != actual[i])
                    violation(where, fmt::format("dimension {} is {}, expected {}", i, actual[i], shape[i].get<int64_t>()));
                continue;
            }
            const std::string e = substitute(shape[i].get<std::string>(), layer);
            if (is_identifier(e)) {
                bind(e, actual[i], where);
            } else {
                Expr expr(e, sym_);
                const auto v = expr.eval();
                if (v && *v != actual[i])
                    violation(where, fmt::format("dimension {} is {}, expected {} = {}", i, actual[i], e, *v));
                else if (expr.overflowed())
                    violation(where, fmt::format("dimension {}: {} overflows 64-bit integers", i, e));
            }
        }
    }

    void check_attributes(hid_t obj, const std::string& obj_path, const json& attrs, const std::string& layer) {
        for (auto& [name, spec] : attrs.items()) {
            const std::string where = (obj_path == "/" ? "" : obj_path + " ") + "attribute " + name;
            if (!h5::has_attr(obj, name)) {
                if (spec.value("required", false)) violation(where, "missing");
                else if (spec.contains("default") && spec.contains("bind"))
                    bind(spec["bind"][0].get<std::string>(), spec["default"].get<int64_t>(), where);
                continue;
            }
            const std::string type = spec.value("type", "string");
            const h5::TypeClass actual = h5::attr_type(obj, name);
            try {
                if (type == "string") {
                    if (actual != h5::TypeClass::string) { violation(where, fmt::format("is {}, expected a string", class_name(actual))); continue; }
                    std::vector<std::string> values;
                    if (spec.contains("shape") && !spec["shape"].empty())
                        values = h5::read_string_array_attr(f_, obj, obj_path, name);
                    else
                        values = {h5::read_string_attr(f_, obj, obj_path, name)};
                    if (spec.contains("shape") && !spec["shape"].empty() && spec["shape"][0].is_number() &&
                        values.size() != spec["shape"][0].get<size_t>())
                        violation(where, fmt::format("holds {} strings, expected {}", values.size(), spec["shape"][0].get<size_t>()));
                    for (const auto& v : values) {
                        if (spec.contains("enum") && std::find(spec["enum"].begin(), spec["enum"].end(), v) == spec["enum"].end())
                            violation(where, fmt::format("'{}' is not one of {}", v, spec["enum"].dump()));
                        if (spec.value("json", false) && !v.empty() && !json::accept(v))  // empty: none (library writers)
                            violation(where, "is not valid JSON");
                    }
                    if (spec.value("unique", false)) {
                        auto sorted = values;
                        std::sort(sorted.begin(), sorted.end());
                        if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) violation(where, "has repeated entries");
                    }
                    continue;
                }
                const bool want_int = type == "integer";
                if ((want_int && actual != h5::TypeClass::integer) ||
                    (!want_int && actual != h5::TypeClass::floating && actual != h5::TypeClass::integer)) {
                    violation(where, fmt::format("is {}, expected {}", class_name(actual), type));
                    continue;
                }
                const auto values = h5::read_float_attr(f_, obj, obj_path, name);
                if (spec.contains("shape")) {
                    const size_t want = spec["shape"].empty() ? 1 : spec["shape"][0].get<size_t>();
                    if (values.size() != want) { violation(where, fmt::format("holds {} values, expected {}", values.size(), want)); continue; }
                }
                check_values(where, spec, values);
                if (spec.contains("bind"))
                    for (size_t i = 0; i < spec["bind"].size() && i < values.size(); ++i)
                        bind(substitute(spec["bind"][i].get<std::string>(), layer), static_cast<int64_t>(values[i]), where);
            } catch (const CorruptMetadataError&) {
                throw;  // the file, not a rule: exit 2
            } catch (const InputError& e) {
                violation(where, e.what());
            }
        }
    }

    static constexpr int64_t kBoxValues = int64_t(1) << 24;  // 128 MiB of doubles per read

    // Every value is read, also where the schema checks none: what a command cannot read, check
    // reports (a corrupt chunk, a type libhdf5 cannot convert).
    void check_dataset_values(const std::string& path, const json& spec, const h5::DatasetInfo& info) {
        h5::Handle d = h5::open_dataset(f_, path);
        // Stream big tensors one [1, 1, ...] box at a time; never load a whole layer.
        if (info.shape.empty()) return;  // a scalar where an array belongs: the shape check says so
        // Boxes of the leading dimensions by index and a run of the next one, at most kBoxValues values.
        const size_t lead = info.shape.size() >= 3 ? 2 : 0, run_dim = lead;
        int64_t inner = 1;  // values per index of run_dim
        for (size_t i = run_dim + 1; i < info.shape.size(); ++i) inner *= info.shape[i];
        if (inner > kBoxValues)
            return violation(path, fmt::format("rows of {} values are more than `paro check` reads at once ({})", inner,
                                               kBoxValues));
        const int64_t run = std::max<int64_t>(1, std::min(info.shape[run_dim], kBoxValues / std::max<int64_t>(1, inner)));
        std::vector<int64_t> count = info.shape, start(info.shape.size(), 0);
        for (size_t i = 0; i < lead; ++i) count[i] = 1;
        int64_t boxes = 1;
        for (size_t i = 0; i < lead; ++i) boxes *= info.shape[i];
        std::vector<double> buf;  // the values as the readers compare them (float would round 1 + 1e-11 to 1)
        const size_t before = violations_.size();
        const bool row_sum = spec.value("row_sum", false), nonzero = spec.value("nonzero_per_box", false);
        for (int64_t b = 0; b < boxes && violations_.size() == before; ++b) {
            if (lead == 2) start[0] = b / info.shape[1], start[1] = b % info.shape[1];
            bool zero = true;  // every value of box b read so far is 0
            for (int64_t r0 = 0; r0 < info.shape[run_dim] && violations_.size() == before; r0 += run) {
                start[run_dim] = r0;
                count[run_dim] = std::min(run, info.shape[run_dim] - r0);
                int64_t box = inner * count[run_dim];
                if (box == 0) break;
                buf.resize(static_cast<size_t>(box));
                h5::read_box(f_, d.get(), path, start, count, buf.data());
                check_values(path, spec, buf, info.type == h5::TypeClass::floating && info.type_size <= 4);
                double sum = 0;
                const int64_t off = row_sum && violations_.size() == before
                                        ? attention_row_off(buf.data(), count[run_dim], inner, &sum)
                                        : -1;
                if (off >= 0)
                    violation(path, fmt::format("row {} of [{}, {}] sums to {}, not 1 (tolerance {}): not "
                                                "post-softmax attention",
                                                r0 + off, start[0], start[1], sum, kAttentionRowSumTolerance));
                zero = zero && all_zero(buf.data(), box);
            }
            if (nonzero && zero && violations_.size() == before && lead == 2)
                violation(path, fmt::format("[{}, {}] is all zeros: no attention mass", start[0], start[1]));
        }
    }

    void check_one(const json& obj, const std::string& path, const std::string& layer) {
        const std::string kind = obj.value("kind", "dataset");
        const bool exists = h5::link_exists(f_.id(), path);
        if (!exists) {
            bool required = obj.value("required", false);
            if (obj.contains("required_unless"))
                required = !h5::link_exists(f_.id(), substitute(obj["required_unless"].get<std::string>(), layer));
            if (obj.contains("required_with"))
                required = h5::link_exists(f_.id(), substitute(obj["required_with"].get<std::string>(), layer));
            if (required) violation(path, kind == "group" ? "missing group" : "missing dataset");
            return;
        }
        for (const auto& other : obj.value("forbidden_with", json::array())) {
            const std::string at = substitute(other.get<std::string>(), layer);
            if (h5::link_exists(f_.id(), at)) {
                violation(path, "is not allowed beside " + at);
                break;
            }
        }
        if (kind == "group") {
            if (!h5::is_group(f_.id(), path)) return violation(path, "is not a group");
            h5::Handle g = h5::open_group(f_, path);
            check_attributes(g.get(), path, obj.value("attributes", json::object()), layer);
            if (obj.value("members", "") == "decimal") {
                const auto names = h5::list_members(f_, path);
                if (static_cast<int64_t>(names.size()) < obj.value("min_members", 0)) violation(path, "holds no members");
                for (const auto& n : names) {
                    const bool ok = decimal_name(n) && std::stoll(n) < static_cast<int64_t>(names.size());
                    if (!ok) violation(path + "/" + n, fmt::format("unexpected member (expected 0..{})", names.size() - 1));
                }
                if (obj.contains("member_count"))
                    bind(obj["member_count"].get<std::string>(), static_cast<int64_t>(names.size()), path + " member count");
            }
            return;
        }
        if (h5::is_group(f_.id(), path)) return violation(path, "is a group, expected a dataset");
        h5::Handle d = h5::open_dataset(f_, path);
        const h5::DatasetInfo info = h5::dataset_info(f_, d.get(), path);
        const auto types = obj.value("type", json::array());
        bool type_ok = types.empty();
        for (const auto& t : types) type_ok = type_ok || t.get<std::string>() == class_name(info.type);
        if (!type_ok) return violation(path, fmt::format("is {}, expected {}", class_name(info.type), types.dump()));
        if (obj.contains("bytes")) {
            bool ok = false;
            for (const auto& b : obj["bytes"]) ok = ok || b.get<size_t>() == info.type_size;
            if (!ok) violation(path, fmt::format("has {}-byte elements, expected {}", info.type_size, obj["bytes"].dump()));
        }
        const size_t before = violations_.size();
        if (obj.contains("shape")) check_shape(path, obj["shape"], info.shape, layer);
        // Values are scanned only in a dataset of the right shape whose data exists: a wrong or
        // absurd declared shape (a few bytes claiming 2^40 rows) would otherwise be read for ever.
        if (violations_.size() != before) return;
        if (h5::stored_bytes(d.get()) == 0 && !info.shape.empty() &&
            std::none_of(info.shape.begin(), info.shape.end(), [](int64_t n) { return n == 0; }))
            return violation(path, "holds no data (never written)");
        if (use_.dataset_values) check_dataset_values(path, obj, info);
    }

    void check_object(const json& obj) {
        const std::string path = obj["path"].get<std::string>();
        if (!obj.contains("each")) return check_one(obj, path, "");
        const std::string parent = obj["each"].get<std::string>();
        if (!h5::is_group(f_.id(), parent)) return;
        // Members named otherwise are violations of the parent group; their names must not reach the
        // shape expressions they would be substituted into.
        for (const auto& member : h5::list_members(f_, parent))
            if (decimal_name(member)) check_one(obj, substitute(path, member), member);
    }

    const h5::File& f_;
    const json& schema_;
    SchemaUse use_;
    Symbols sym_;
    std::vector<std::pair<std::string, std::string>> violations_;
};

}  // namespace

void require_schema(const h5::File& f, const std::string& schema_json, const SchemaUse& use) {
    const json schema = json::parse(schema_json);
    const auto v = Checker(f, schema, use).run();
    if (!v.empty()) throw InputError(f.path(), v.front().first, v.front().second);
}

CheckResult check_file_against(const std::string& path, const std::string& schema_json) {
    const json schema = json::parse(schema_json);
    h5::File f = h5::File::open_read(path);
    CheckResult r;
    r.format = schema["format"].get<std::string>();
    for (const auto& [where, what] : Checker(f, schema).run()) r.violations.push_back(where + ": " + what);
    // The readers' own rules beyond the layout (a pattern's slots covering [0, 1], its options JSON,
    // masks against their densities; a dump's steps below num_steps, prompt names, layer scales, ...),
    // from the reader itself: what it refuses, check lists. Run on a file whose layout is right (the
    // reader would stop at the schema's first violation).
    const auto reader_rules = [&](const auto& read) {
        try {
            read();
        } catch (const CorruptMetadataError&) {
            throw;  // the file, not a rule: exit 2
        } catch (const InputError& e) {
            r.violations.push_back((e.where().empty() ? "/" : e.where()) + ": " + e.message());
        }
    };
    if (r.violations.empty() && r.format == "paro-pattern") reader_rules([&] { check_pattern_rules(f); });
    if (r.violations.empty() && r.format == "paro-dump") reader_rules([&] { (void)DumpReader(path); });
    return r;
}

CheckResult check_file(const std::string& path) {
    const h5::File file = h5::File::open_read(path);
    // The whole check once in a child first, as the readers do (it reads every value: a large
    // dump's check takes twice as long, which a command run once per file can afford).
    h5::rehearse_in_child(path, [&] { (void)check_file(path); });
    const std::string format = h5::format_name(file);
    if (format == "paro-dump") return check_file_against(path, kDumpSchemaJson);
    if (format == "paro-stats") return check_file_against(path, kStatsSchemaJson);
    if (format == "paro-pattern") {
        const h5::File f = h5::File::open_read(path);
        const bool v1 = h5::read_scalar_int_attr(f, f.id(), "/", "paro_version") == 1;
        return check_file_against(path, v1 ? kPatternV1SchemaJson : kPatternSchemaJson);
    }
    throw InputError(path, "attribute paro_format",
                     format.empty() ? "missing: not a paro-dump, paro-pattern or paro-stats file"
                                    : fmt::format("'{}' is not paro-dump, paro-pattern or paro-stats{}", format,
                                                  h5::format_hint(format)));
}

}  // namespace paro
