#pragma once
// The files of lib/report/templates/: the report page's mustache templates, style sheet and script.
// lib/CMakeLists.txt reads them at configure time into report_templates.cpp (from
// report_templates.cpp.in), so `paro report` needs neither the source tree nor an install tree.
#include <map>
#include <string>
#include <string_view>

namespace paro {

// File name ("page.mustache", "report.css", ...) -> contents.
const std::map<std::string, std::string_view>& report_template_files();

}  // namespace paro
