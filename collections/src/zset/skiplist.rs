//! Redis's skiplist (`t_zset.c`: `zslInsert`, `zslDeleteNode`, `zslGetRank`, ...) over an arena
//! of nodes linked by `u32` indexes. Every level link carries a span, so rank queries are
//! O(log N). Ordered by score, then by member bytes.

use super::range::{LexRange, ScoreRange};

pub(crate) const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
const MAX_LEVEL: usize = 32;

#[derive(Clone, Copy, Debug)]
struct Level {
    forward: u32,
    span: u32,
}

#[derive(Clone, Debug)]
struct Node {
    member: Box<[u8]>,
    score: f64,
    backward: u32,
    levels: Box<[Level]>,
}

/// The arena skiplist. Node 0 is the header; freed nodes are reused.
#[derive(Clone, Debug)]
pub(crate) struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    tail: u32,
    /// Levels in use (at most `MAX_LEVEL`); a `u32` beside `tail` keeps the struct small.
    top: u32,
    len: usize,
    seed: u64,
    /// Bytes the nodes hold on the heap (members and level arrays), kept as nodes come and go
    /// so that `memory_usage` is O(1).
    bytes: usize,
}

/// Bytes node `n` holds on the heap.
fn node_bytes(n: &Node) -> usize {
    n.member.len() + n.levels.len() * size_of::<Level>()
}

/// Whether (score, member) sorts before the node's (score, member).
fn before(score: f64, member: &[u8], n: &Node) -> bool {
    n.score > score || (n.score == score && *n.member > *member)
}

/// Whether the node's (score, member) sorts before (score, member).
fn less(n: &Node, score: f64, member: &[u8]) -> bool {
    n.score < score || (n.score == score && *n.member < *member)
}

impl Default for SkipList {
    fn default() -> Self {
        let head = Node {
            member: Box::default(),
            score: 0.0,
            backward: NIL,
            levels: vec![
                Level {
                    forward: NIL,
                    span: 0
                };
                MAX_LEVEL
            ]
            .into_boxed_slice(),
        };
        Self {
            nodes: vec![head],
            free: Vec::new(),
            tail: NIL,
            len: 0,
            top: 1,
            seed: 0x2545_f491,
            bytes: MAX_LEVEL * size_of::<Level>(),
        }
    }
}

impl SkipList {
    /// Levels in use.
    fn level(&self) -> usize {
        self.top as usize
    }

    fn fwd(&self, x: u32, i: usize) -> u32 {
        self.nodes[x as usize].levels[i].forward
    }

    fn span(&self, x: u32, i: usize) -> usize {
        self.nodes[x as usize].levels[i].span as usize
    }

    fn node(&self, x: u32) -> &Node {
        &self.nodes[x as usize]
    }

    /// The member and score of node `x`.
    pub(crate) fn get(&self, x: u32) -> (&[u8], f64) {
        let n = self.node(x);
        (&n.member, n.score)
    }

    pub(crate) fn first(&self) -> u32 {
        self.fwd(HEAD, 0)
    }

    pub(crate) fn last(&self) -> u32 {
        self.tail
    }

    pub(crate) fn next(&self, x: u32) -> u32 {
        self.fwd(x, 0)
    }

    pub(crate) fn prev(&self, x: u32) -> u32 {
        self.node(x).backward
    }

    fn random_level(&mut self) -> usize {
        // xorshift64*; P = 1/4 per extra level, as ZSKIPLIST_P.
        let mut level = 1;
        loop {
            self.seed ^= self.seed >> 12;
            self.seed ^= self.seed << 25;
            self.seed ^= self.seed >> 27;
            let r = self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
            if r >> 62 != 0 || level == MAX_LEVEL {
                return level;
            }
            level += 1;
        }
    }

    /// The rightmost node before (score, member) at every level, and the rank of each.
    fn search(&self, score: f64, member: &[u8]) -> ([u32; MAX_LEVEL], [usize; MAX_LEVEL]) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0usize; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level()).rev() {
            rank[i] = if i == self.level() - 1 {
                0
            } else {
                rank[i + 1]
            };
            loop {
                let f = self.fwd(x, i);
                if f == NIL || !less(self.node(f), score, member) {
                    break;
                }
                rank[i] += self.span(x, i);
                x = f;
            }
            update[i] = x;
        }
        (update, rank)
    }

    /// Inserts a member known to be absent.
    pub(crate) fn insert(&mut self, score: f64, member: Box<[u8]>) {
        let (mut update, mut rank) = self.search(score, &member);
        let level = self.random_level();
        if level > self.level() {
            for i in self.level()..level {
                rank[i] = 0;
                update[i] = HEAD;
                self.nodes[HEAD as usize].levels[i].span = self.len as u32;
            }
            self.top = level as u32;
        }
        let node = Node {
            member,
            score,
            backward: if update[0] == HEAD { NIL } else { update[0] },
            levels: vec![
                Level {
                    forward: NIL,
                    span: 0
                };
                level
            ]
            .into_boxed_slice(),
        };
        self.bytes += node_bytes(&node);
        let x = match self.free.pop() {
            Some(x) => {
                self.nodes[x as usize] = node;
                x
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        for i in 0..level {
            let u = update[i] as usize;
            let ulevel = self.nodes[u].levels[i];
            let gap = (rank[0] - rank[i]) as u32;
            self.nodes[x as usize].levels[i] = Level {
                forward: ulevel.forward,
                span: ulevel.span - gap,
            };
            self.nodes[u].levels[i] = Level {
                forward: x,
                span: gap + 1,
            };
        }
        for (i, &u) in update.iter().enumerate().take(self.level()).skip(level) {
            self.nodes[u as usize].levels[i].span += 1;
        }
        let f = self.fwd(x, 0);
        if f == NIL {
            self.tail = x;
        } else {
            self.nodes[f as usize].backward = x;
        }
        self.len += 1;
    }

    fn delete_node(&mut self, x: u32, update: &[u32; MAX_LEVEL]) -> Box<[u8]> {
        for (i, &u) in update.iter().enumerate().take(self.level()) {
            let xl = self.nodes[x as usize].levels.get(i).copied();
            let ul = &mut self.nodes[u as usize].levels[i];
            match xl {
                Some(xl) if ul.forward == x => {
                    ul.span = ul.span + xl.span - 1;
                    ul.forward = xl.forward;
                }
                _ => ul.span -= 1,
            }
        }
        let (f, b) = (self.fwd(x, 0), self.node(x).backward);
        if f == NIL {
            self.tail = b;
        } else {
            self.nodes[f as usize].backward = b;
        }
        while self.level() > 1 && self.fwd(HEAD, self.level() - 1) == NIL {
            self.top -= 1;
        }
        self.len -= 1;
        let n = &mut self.nodes[x as usize];
        self.bytes -= node_bytes(n);
        n.levels = Box::default();
        self.free.push(x);
        let member = std::mem::take(&mut n.member);
        if self.len == 0 {
            *self = Self {
                seed: self.seed,
                ..Self::default()
            };
        }
        member
    }

    /// Removes (score, member); false when absent.
    pub(crate) fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let (update, _) = self.search(score, member);
        let x = self.fwd(update[0], 0);
        if x != NIL && self.node(x).score == score && *self.node(x).member == *member {
            self.delete_node(x, &update);
            true
        } else {
            false
        }
    }

    /// Moves a present member from `old` to `new` score (`zslUpdateScore`).
    pub(crate) fn update_score(&mut self, old: f64, member: &[u8], new: f64) {
        let (update, _) = self.search(old, member);
        let x = self.fwd(update[0], 0);
        debug_assert!(x != NIL && *self.node(x).member == *member);
        if x == NIL {
            return;
        }
        let (b, f) = (self.node(x).backward, self.fwd(x, 0));
        if (b == NIL || self.node(b).score < new) && (f == NIL || self.node(f).score > new) {
            self.nodes[x as usize].score = new;
            return;
        }
        let member = self.delete_node(x, &update);
        self.insert(new, member);
    }

    /// The 1-based rank of (score, member), 0 when absent.
    pub(crate) fn rank(&self, score: f64, member: &[u8]) -> usize {
        let mut rank = 0;
        let mut x = HEAD;
        for i in (0..self.level()).rev() {
            loop {
                let f = self.fwd(x, i);
                if f == NIL || before(score, member, self.node(f)) {
                    break;
                }
                rank += self.span(x, i);
                x = f;
            }
            if x != HEAD && *self.node(x).member == *member {
                return rank;
            }
        }
        0
    }

    /// The node at 1-based `rank`, NIL when out of range.
    pub(crate) fn by_rank(&self, rank: usize) -> u32 {
        if rank == 0 || rank > self.len {
            return NIL;
        }
        let mut traversed = 0;
        let mut x = HEAD;
        for i in (0..self.level()).rev() {
            loop {
                let f = self.fwd(x, i);
                if f == NIL || traversed + self.span(x, i) > rank {
                    break;
                }
                traversed += self.span(x, i);
                x = f;
            }
            if traversed == rank {
                return x;
            }
        }
        NIL
    }

    /// The rightmost node at each level whose key fails `below`, i.e. the last node that is
    /// still before the range.
    fn descend(&self, mut below: impl FnMut(&Node) -> bool) -> ([u32; MAX_LEVEL], usize) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = 0;
        let mut x = HEAD;
        for i in (0..self.level()).rev() {
            loop {
                let f = self.fwd(x, i);
                if f == NIL || !below(self.node(f)) {
                    break;
                }
                rank += self.span(x, i);
                x = f;
            }
            update[i] = x;
        }
        (update, rank)
    }

    /// The first node with a score in range and its 1-based rank, or NIL.
    pub(crate) fn first_in_score(&self, r: &ScoreRange) -> (u32, usize) {
        if r.is_empty() {
            return (NIL, 0);
        }
        let (update, rank) = self.descend(|n| !r.gte_min(n.score));
        let x = self.fwd(update[0], 0);
        if x == NIL || !r.lte_max(self.node(x).score) {
            (NIL, 0)
        } else {
            (x, rank + 1)
        }
    }

    /// The last node with a score in range and its 1-based rank, or NIL.
    pub(crate) fn last_in_score(&self, r: &ScoreRange) -> (u32, usize) {
        if r.is_empty() {
            return (NIL, 0);
        }
        let (update, rank) = self.descend(|n| r.lte_max(n.score));
        let x = update[0];
        if x == HEAD || !r.gte_min(self.node(x).score) {
            (NIL, 0)
        } else {
            (x, rank)
        }
    }

    /// Whether any member can be in the lex range: Redis's `zslIsInLexRange` (the range is not
    /// empty, the last member is not below it, the first not above it). Lex ranges assume one
    /// score for all members; with mixed scores this check is part of what Redis answers.
    fn lex_range_possible(&self, r: &LexRange) -> bool {
        let (first, last) = (self.first(), self.last());
        !r.is_empty()
            && first != NIL
            && r.gte_min(&self.node(last).member)
            && r.lte_max(&self.node(first).member)
    }

    /// The first node whose member is not below the range, found as Redis walks a listpack
    /// (member by member from the head), with its 1-based rank: with `scan` (the set is one
    /// Redis would keep as a listpack), where mixed scores make the walk's answer differ from a
    /// descent's.
    fn lex_scan_from_head(&self, r: &LexRange, scan: bool) -> Option<(u32, usize)> {
        if !scan {
            return None;
        }
        let (mut x, mut rank) = (self.first(), 1);
        while x != NIL && !r.gte_min(&self.node(x).member) {
            x = self.next(x);
            rank += 1;
        }
        Some((x, rank))
    }

    /// The first node with a member in the lex range and its 1-based rank, or NIL. `scan`:
    /// walk member by member, as Redis does a listpack.
    pub(crate) fn first_in_lex(&self, r: &LexRange, scan: bool) -> (u32, usize) {
        if !self.lex_range_possible(r) {
            return (NIL, 0);
        }
        if let Some((x, rank)) = self.lex_scan_from_head(r, scan) {
            return if x == NIL || !r.lte_max(&self.node(x).member) {
                (NIL, 0)
            } else {
                (x, rank)
            };
        }
        let (update, rank) = self.descend(|n| !r.gte_min(&n.member));
        let x = self.fwd(update[0], 0);
        if x == NIL || !r.lte_max(&self.node(x).member) {
            (NIL, 0)
        } else {
            (x, rank + 1)
        }
    }

    /// The last node with a member in the lex range and its 1-based rank, or NIL. `scan`:
    /// walk member by member from the tail, as Redis does a listpack.
    pub(crate) fn last_in_lex(&self, r: &LexRange, scan: bool) -> (u32, usize) {
        if !self.lex_range_possible(r) {
            return (NIL, 0);
        }
        if scan {
            // From the tail, as Redis walks a listpack backwards.
            let (mut x, mut rank) = (self.last(), self.len);
            while x != NIL && !r.lte_max(&self.node(x).member) {
                x = self.prev(x);
                rank -= 1;
            }
            return if x == NIL || !r.gte_min(&self.node(x).member) {
                (NIL, 0)
            } else {
                (x, rank)
            };
        }
        let (update, rank) = self.descend(|n| r.lte_max(&n.member));
        let x = update[0];
        if x == HEAD || !r.gte_min(&self.node(x).member) {
            (NIL, 0)
        } else {
            (x, rank)
        }
    }

    /// Removes the nodes of 1-based ranks `start..=end`, returning their members.
    pub(crate) fn remove_rank_range(&mut self, start: usize, end: usize) -> Vec<Box<[u8]>> {
        let update = self.predecessors_of_rank(start);
        self.remove_run(update, end - start + 1, |_| true)
    }

    /// Removes the run of nodes in the score range.
    pub(crate) fn remove_score_range(&mut self, r: &ScoreRange) -> Vec<Box<[u8]>> {
        if r.is_empty() {
            return Vec::new();
        }
        let (update, _) = self.descend(|n| !r.gte_min(n.score));
        self.remove_run(update, usize::MAX, |n| r.lte_max(n.score))
    }

    /// Removes the run of nodes in the lex range, starting where [`Self::first_in_lex`] would
    /// (`scan`: walking as Redis walks a listpack). Like Redis's `zslDeleteRangeByLex`, the
    /// skiplist path skips the whole-range check (it matters only with mixed scores).
    pub(crate) fn remove_lex_range(&mut self, r: &LexRange, scan: bool) -> Vec<Box<[u8]>> {
        let update = if scan {
            if !self.lex_range_possible(r) {
                return Vec::new();
            }
            match self.lex_scan_from_head(r, true) {
                Some((x, rank)) if x != NIL => self.predecessors_of_rank(rank),
                _ => return Vec::new(),
            }
        } else {
            self.descend(|n| !r.gte_min(&n.member)).0
        };
        self.remove_run(update, usize::MAX, |n| r.lte_max(&n.member))
    }

    /// The last node before 1-based rank `rank` on every level (what a deletion there needs).
    fn predecessors_of_rank(&self, rank: usize) -> [u32; MAX_LEVEL] {
        let mut update = [HEAD; MAX_LEVEL];
        let mut traversed = 0;
        let mut x = HEAD;
        for i in (0..self.level()).rev() {
            while self.fwd(x, i) != NIL && traversed + self.span(x, i) < rank {
                traversed += self.span(x, i);
                x = self.fwd(x, i);
            }
            update[i] = x;
        }
        update
    }

    fn remove_run(
        &mut self,
        update: [u32; MAX_LEVEL],
        max: usize,
        keep_going: impl Fn(&Node) -> bool,
    ) -> Vec<Box<[u8]>> {
        let mut out = Vec::new();
        let mut x = self.fwd(update[0], 0);
        while x != NIL && out.len() < max && keep_going(self.node(x)) {
            let next = self.fwd(x, 0);
            out.push(self.delete_node(x, &update));
            if self.len == 0 {
                break;
            }
            x = next;
        }
        out
    }

    /// Bytes held by the arena and the members, O(1).
    pub(crate) fn memory_usage(&self) -> usize {
        self.nodes.capacity() * size_of::<Node>() + self.bytes
    }

    /// [`memory_usage`](Self::memory_usage) counted from scratch.
    #[cfg(test)]
    pub(crate) fn memory_usage_slow(&self) -> usize {
        self.nodes.capacity() * size_of::<Node>() + self.nodes.iter().map(node_bytes).sum::<usize>()
    }

    /// Checks every invariant (tests only): order, spans, backward links, length.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        use std::cmp::Ordering;
        let mut x = self.first();
        let mut prev = NIL;
        let mut n = 0;
        while x != NIL {
            assert_eq!(self.node(x).backward, prev);
            if prev != NIL {
                let (p, c) = (self.node(prev), self.node(x));
                assert_eq!(
                    p.score
                        .partial_cmp(&c.score)
                        .unwrap()
                        .then(p.member.cmp(&c.member)),
                    Ordering::Less
                );
            }
            n += 1;
            assert_eq!(self.rank(self.node(x).score, &self.node(x).member), n);
            assert_eq!(self.by_rank(n), x);
            prev = x;
            x = self.next(x);
        }
        assert_eq!(self.tail, prev);
        assert_eq!(n, self.len);
    }
}
