//! Plain-text tables for the terminal (`hookgate status`, `hookgate spool
//! list`): columns as wide as their widest cell, colour only when asked.

/// ANSI colour, or none.
#[derive(Clone, Copy)]
pub struct Paint(pub bool);

impl Paint {
    pub fn apply(self, text: &str, code: &str) -> String {
        if self.0 { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One cell: its text, and its colour on a terminal.
pub struct Cell {
    text: String,
    colour: Option<&'static str>,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), colour: None }
    }

    pub fn painted(text: impl Into<String>, colour: Option<&'static str>) -> Cell {
        Cell { text: text.into(), colour }
    }
}

/// Columns as wide as their widest cell, two spaces apart. Widths count
/// characters (`µ` is one), and colour goes around the text, never into the
/// padding, so a coloured cell lines up like a plain one.
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Table {
        Table { columns: columns.to_vec(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    pub fn render(&self, out: &mut String, paint: Paint) {
        let width = |text: &str| text.chars().count();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                self.rows.iter().filter_map(|r| r.get(i)).map(|c| width(&c.text)).fold(width(name), usize::max)
            })
            .collect();
        let header: Vec<Cell> = self.columns.iter().map(|(name, _)| Cell::plain(*name)).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let (align, pad) = (self.columns[i].1, widths[i].saturating_sub(width(&cell.text)));
                let text = match cell.colour {
                    Some(code) => paint.apply(&cell.text, code),
                    None => cell.text.clone(),
                };
                if i > 0 {
                    line.push_str("  ");
                }
                if align == Align::Right {
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                line.push_str(&text);
                if align == Align::Left && i + 1 < row.len() {
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}
