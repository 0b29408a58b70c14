//! Tables for `-o table`: plain columns, no borders, like kubectl and etcdctl print.

use comfy_table::{presets::NOTHING, ContentArrangement, Table};

/// Output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Table,
}

impl Format {
    pub const NAMES: [&'static str; 2] = ["json", "table"];

    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "json" => Some(Format::Json),
            "table" => Some(Format::Table),
            _ => None,
        }
    }
}

/// The `-o/--output FORMAT` flag every reporting tool takes (`json` by default, `table` for
/// people); `help` says what each format shows for that tool.
pub fn output_arg(help: &'static str) -> clap::Arg {
    output_arg_with(help, &[])
}

/// [`output_arg`] that also accepts a tool's own formats (`dot` for pictures), which that
/// tool parses itself before [`Format::parse`].
pub fn output_arg_with(help: &'static str, more: &'static [&'static str]) -> clap::Arg {
    let names: Vec<&'static str> = Format::NAMES.iter().chain(more).copied().collect();
    clap::Arg::new("output")
        .short('o')
        .long("output")
        .value_name("FORMAT")
        .value_parser(clap::builder::PossibleValuesParser::new(names))
        .default_value("json")
        .help(help)
}

/// Renders rows under upper-case headers, columns left-aligned, with a final newline.
pub fn render(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_ascii_uppercase()));
    for row in rows {
        table.add_row(row);
    }
    let mut text: String = table
        .lines()
        .map(|line| line.trim_end().trim_start_matches(' ').to_string())
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_aligned_columns() {
        let text = super::render(&["name", "ip"], [vec!["a".into(), "10.0.0.1".into()]]);
        let lines: Vec<_> = text.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{text}");
        assert_eq!(lines[0].find("IP"), lines[1].find("10.0.0.1"), "{text}");
    }
}
