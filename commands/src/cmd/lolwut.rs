//! LOLWUT (Redis's `lolwut.c`, `lolwut5.c`, `lolwut6.c`): Redis 7.0's own version prints the
//! version line; `VERSION 5` draws Georg Nees's *Schotter* in Braille characters, `VERSION 6`
//! a skyline in the terminal's four grays. The drawings are Redis's algorithms, random as
//! Redis's are (Redis seeds `rand()` at start-up), so only their shape repeats.

use crate::args::{Args, parse_i64};
use crate::ctx::Ctx;
use crate::table::{CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("lolwut", -1, "server", lolwut)
    .with_flags(READONLY | FAST)
    .with_acl(&["read", "fast"])
    .with_docs(
        "5.0.0",
        "Display some computer art and the Redis version",
        "",
    )];

/// A canvas of pixels (colors 0..=3); drawing outside it is ignored.
struct Canvas {
    width: i32,
    height: i32,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: i32, height: i32, background: u8) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![background; (width.max(0) * height.max(0)) as usize],
        }
    }

    fn set(&mut self, x: i32, y: i32, color: u8) {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            self.pixels[(x + y * self.width) as usize] = color;
        }
    }

    fn get(&self, x: i32, y: i32) -> u8 {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            self.pixels[(x + y * self.width) as usize]
        } else {
            0
        }
    }

    /// Bresenham's line.
    fn line(&mut self, mut x1: i32, mut y1: i32, x2: i32, y2: i32, color: u8) {
        let (dx, dy) = ((x2 - x1).abs(), (y2 - y1).abs());
        let (sx, sy) = (if x1 < x2 { 1 } else { -1 }, if y1 < y2 { 1 } else { -1 });
        let mut err = dx - dy;
        loop {
            self.set(x1, y1, color);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// A square centred on `x,y`, of side `size`, turned by `angle` radians.
    fn square(&mut self, x: i32, y: i32, size: f32, angle: f32, color: u8) {
        let size = (size / std::f32::consts::SQRT_2).round();
        let mut k = std::f32::consts::FRAC_PI_4 + angle;
        let mut px = [0i32; 4];
        let mut py = [0i32; 4];
        for j in 0..4 {
            px[j] = (k.sin() * size + x as f32).round() as i32;
            py[j] = (k.cos() * size + y as f32).round() as i32;
            k += std::f32::consts::FRAC_PI_2;
        }
        for j in 0..4 {
            self.line(px[j], py[j], px[(j + 1) % 4], py[(j + 1) % 4], color);
        }
    }
}

/// C's `rand()` as Redis uses it: 31 random bits (xorshift, seeded from the clock).
struct Rand(u64);

impl Rand {
    const MAX: i32 = i32::MAX;

    fn new() -> Rand {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rand(t ^ u64::from(std::process::id()) | 1)
    }

    fn next(&mut self) -> i32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 33) as i32
    }

    /// `(float)rand() / RAND_MAX`.
    fn unit(&mut self) -> f32 {
        self.next() as f32 / Self::MAX as f32
    }
}

/// The `LOLWUT` reply: `VERSION n` picks the drawing (and is taken off the arguments the
/// drawing reads), as Redis's `lolwutCommand` does.
fn lolwut(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mut version = String::from(crate::cmd::info::REDIS_VERSION);
    let mut rest = 1;
    if args.len() >= 3 && args.get(1).eq_ignore_ascii_case(b"version") {
        let Some(v) = parse_i64(args.get(2)) else {
            return ctx.not_integer();
        };
        version = format!("{}.0.0", v as u32);
        rest = 3;
    }
    let v = version.as_bytes();
    let nums: Vec<&[u8]> = args.iter_from(rest).collect();
    // Redis's test: 5.x (not 5.9) and 4.9 draw Schotter, 6.x (not 6.9) and 5.9 the skyline.
    let dotted = v.get(1) == Some(&b'.');
    let nine = v.get(2) == Some(&b'9');
    match (dotted, v[0], nine) {
        (true, b'5', false) | (true, b'4', true) => schotter(ctx, &nums),
        (true, b'6', false) | (true, b'5', true) => skyline(ctx, &nums),
        _ => {
            let text = format!("Redis ver. {}\n", crate::cmd::info::REDIS_VERSION);
            ctx.reply.verbatim("txt", text.as_bytes());
        }
    }
}
/// The optional numeric arguments, each clamped to `1..=max`; `None` after an error reply.
fn numbers(ctx: &mut Ctx<'_>, args: &[&[u8]], defaults: &[(i64, i64)]) -> Option<Vec<i64>> {
    let mut out = Vec::new();
    for (i, &(default, max)) in defaults.iter().enumerate() {
        let v = match args.get(i) {
            None => default,
            Some(a) => match parse_i64(a) {
                Some(v) => v,
                None => {
                    ctx.not_integer();
                    return None;
                }
            },
        };
        out.push(v.clamp(1, max));
    }
    Some(out)
}

/// `LOLWUT VERSION 5 [columns] [squares-per-row] [squares-per-col]`: Schotter.
fn schotter(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(n) = numbers(ctx, args, &[(66, 1000), (8, 200), (12, 200)]) else {
        return;
    };
    let (cols, per_row, per_col) = (n[0] as i32, n[1] as i32, n[2] as i32);
    let width = cols * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32) as i32 + padding * 2;
    let mut canvas = Canvas::new(width, height, 0);
    let mut rand = Rand::new();
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0) as i32 + padding;
            let mut sy = (y as f32 * side + side / 2.0) as i32 + padding;
            // Lower rows are turned and moved more and more at random.
            let mut angle = 0.0;
            if y > 1 {
                let mut r1 = rand.unit() / per_col as f32 * y as f32;
                let mut r2 = rand.unit() / per_col as f32 * y as f32;
                let mut r3 = rand.unit() / per_col as f32 * y as f32;
                if rand.next() % 2 == 1 {
                    r1 = -r1;
                }
                if rand.next() % 2 == 1 {
                    r2 = -r2;
                }
                if rand.next() % 2 == 1 {
                    r3 = -r3;
                }
                angle = r1;
                sx += (r2 * side / 3.0) as i32;
                sy += (r3 * side / 3.0) as i32;
            }
            canvas.square(sx, sy, side, angle, 1);
        }
    }
    let mut text = String::new();
    let mut y = 0;
    while y < canvas.height {
        let mut x = 0;
        while x < canvas.width {
            // Braille dots: 0 3 / 1 4 / 2 5 / 6 7.
            let dots = [
                (0, 0, 0),
                (0, 1, 1),
                (0, 2, 2),
                (1, 0, 3),
                (1, 1, 4),
                (1, 2, 5),
                (0, 3, 6),
                (1, 3, 7),
            ];
            let byte = dots
                .iter()
                .filter(|&&(dx, dy, _)| canvas.get(x + dx, y + dy) != 0)
                .fold(0u32, |b, &(_, _, bit)| b | 1 << bit);
            text.push(char::from_u32(0x2800 + byte).unwrap_or(' '));
            x += 2;
        }
        if y != canvas.height - 1 {
            text.push('\n');
        }
        y += 4;
    }
    text.push_str("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. ");
    text.push_str(crate::cmd::info::REDIS_VERSION);
    text.push('\n');
    ctx.reply.verbatim("txt", text.as_bytes());
}

/// One skyscraper of the skyline.
struct Skyscraper {
    xoff: i32,
    width: i32,
    height: i32,
    windows: bool,
    color: u8,
}

fn skyscraper(canvas: &mut Canvas, s: &Skyscraper, rand: &mut Rand) {
    let start_y = canvas.height - 1;
    let end_y = start_y - s.height + 1;
    let mut y = start_y;
    while y >= end_y {
        for x in s.xoff..s.xoff + s.width {
            // The roof is four pixels narrower.
            if y == end_y && (x <= s.xoff + 1 || x >= s.xoff + s.width - 2) {
                continue;
            }
            let mut color = s.color;
            if s.windows
                && x > s.xoff + 1
                && x < s.xoff + s.width - 2
                && y > end_y + 1
                && y < start_y - 1
            {
                let relx = x - (s.xoff + 1);
                let rely = y - (end_y + 1);
                // Windows two pixels wide and one tall, in one of the two grays.
                if (relx / 2) % 2 != 0 && rely % 2 != 0 {
                    loop {
                        color = 1 + (rand.next() % 2) as u8;
                        if color != s.color {
                            break;
                        }
                    }
                    if relx % 2 != 0 {
                        color = canvas.get(x - 1, y);
                    }
                }
            }
            canvas.set(x, y, color);
        }
        y -= 1;
    }
}

/// `LOLWUT VERSION 6 [columns] [rows]`: a skyline after the parallax backgrounds of 8-bit games.
fn skyline(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let Some(n) = numbers(ctx, args, &[(80, 1000), (20, 1000)]) else {
        return;
    };
    let (cols, rows) = (n[0] as i32, n[1] as i32);
    let mut canvas = Canvas::new(cols, rows, 3);
    let mut rand = Rand::new();
    // Background skyscrapers without windows, the lighter ones behind.
    for color in [2u8, 1] {
        let mut offset = -10;
        while offset < canvas.width {
            offset += rand.next() % 8;
            let width = 10 + rand.next() % 9;
            let height = if color == 2 {
                canvas.height / 2 + rand.next() % canvas.height / 2
            } else {
                canvas.height / 2 + rand.next() % canvas.height / 3
            };
            let s = Skyscraper {
                xoff: offset,
                width,
                height,
                windows: false,
                color,
            };
            skyscraper(&mut canvas, &s, &mut rand);
            offset += if color == 2 { width / 2 } else { width + 1 };
        }
    }
    // The foreground, with windows.
    let mut offset = -10;
    while offset < canvas.width {
        offset += rand.next() % 8;
        let mut width = 5 + rand.next() % 14;
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = canvas.height / 3 + rand.next() % canvas.height / 2;
        let s = Skyscraper {
            xoff: offset,
            width,
            height,
            windows: true,
            color: 0,
        };
        skyscraper(&mut canvas, &s, &mut rand);
        offset += width + 5;
    }
    let mut text = String::new();
    for y in 0..canvas.height {
        for x in 0..canvas.width {
            let escape = match canvas.get(x, y) {
                1 => "0;90;100m",
                2 => "0;37;47m",
                3 => "0;97;107m",
                _ => "0;30;40m",
            };
            text.push_str("\x1b[");
            text.push_str(escape);
            text.push_str(" \x1b[0m");
        }
        if y != canvas.height - 1 {
            text.push('\n');
        }
    }
    text.push_str(
        "\nDedicated to the 8 bit game developers of past and present.\n\
         Original 8 bit image from Plaguemon by hikikomori. Redis ver. ",
    );
    text.push_str(crate::cmd::info::REDIS_VERSION);
    text.push('\n');
    ctx.reply.verbatim("txt", text.as_bytes());
}
