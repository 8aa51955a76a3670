//! Where a region checks its instruction budget.
//!
//! A block of a region may only start when the budget holds what it
//! retires, so that an instruction-count stop (the next timer event under
//! `--clock virtual`) lands where the interpreter's would. Checking at
//! every transfer between the region's blocks costs a compare, a branch
//! and a live budget at each. Instead a block whose only way in is from
//! one other block of the region ("covered" by it) is not checked: the
//! block before it checks for both. Each block gets a `need`: its own
//! instructions (plus the longer select arm when its Jcc runs as selects,
//! `emit_select.rs`) plus the largest `need` of the blocks it covers. The
//! function's entry and every transfer into an uncovered block check the
//! target's `need`, so any block is entered with at least its `need` in
//! the budget and every covered block after it has enough too.
//!
//! When the budget does not hold a `need`, the function leaves before the
//! block (as before, where the check was per block), and the interpreter
//! runs up to the stop: counts and stops stay the interpreter's.

use iced_x86::Mnemonic as M;

use crate::ctx::EXIT_NEXT;
use crate::emit_insn::{inline_kind, rel_target};
use crate::emit_select::Arms;
use crate::translate::{Lower, Region};

/// The budget each block of a region needs (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BudgetPlan {
    /// Per block of the region (its order): what the budget must hold
    /// when the block starts.
    pub need: Vec<i64>,
    /// Per block: entered only from one other block of the region, which
    /// checked for it, so a transfer to it needs no check.
    pub covered: Vec<bool>,
}

/// The region blocks (indices) that block `i` may transfer to, and the
/// instructions it retires in one pass (a select's longer arm included).
/// Every transfer the emitter can make is listed (more are harmless).
fn edges(region: &Region, arms: &[Arms], i: usize) -> (Vec<usize>, i64) {
    let index = |eip: u32| region.blocks.iter().position(|b| b.start_eip == eip);
    let block = &region.blocks[i];
    let mut len = block.insns.len() as i64;
    let mut to = Vec::new();
    let last = block.insns.last();
    let transfer = last.filter(|g| g.lower == Lower::Inline && inline_kind(&g.d) == Some(true));
    match transfer {
        Some(g) => {
            let insn = &g.d.insn;
            if let Some(a) = arms.iter().find(|a| a.jcc == g.eip) {
                len += a.taken.len().max(a.fall.len()) as i64;
                to.extend(index(a.join));
            } else if insn.mnemonic() == M::Ret {
                to.extend(region.return_points().into_iter().filter_map(index));
            } else if insn.is_jcc_short_or_near() {
                to.extend(index(rel_target(insn, g.eip)));
                to.extend(index(g.next));
            } else if crate::emit_insn::is_rel_branch(insn) {
                to.extend(index(rel_target(insn, g.eip)));
            }
        }
        None => {
            if block.tail.1 == EXIT_NEXT {
                to.extend(index(block.tail.0));
            }
        }
    }
    (to, len)
}

/// Plans the budget checks of `region` (see the module doc).
pub(crate) fn plan(region: &Region, arms: &[Arms]) -> BudgetPlan {
    let n = region.blocks.len();
    let graph: Vec<(Vec<usize>, i64)> = (0..n).map(|i| edges(region, arms, i)).collect();
    // Only edges from blocks that can run count: an arm's block that only
    // the select reached is never entered.
    let mut reached = vec![false; n];
    let mut work = vec![0];
    while let Some(i) = work.pop() {
        if std::mem::replace(&mut reached[i], true) {
            continue;
        }
        work.extend(graph[i].0.iter().copied());
    }
    let mut preds = vec![Vec::new(); n];
    for i in (0..n).filter(|&i| reached[i]) {
        for &t in &graph[i].0 {
            if !preds[t].contains(&i) {
                preds[t].push(i);
            }
        }
    }
    // The entry can always be entered from outside.
    let mut covered: Vec<bool> = (0..n)
        .map(|i| i != 0 && preds[i].len() == 1 && preds[i][0] != i)
        .collect();
    loop {
        match needs(&graph, &covered) {
            Ok(need) => return BudgetPlan { need, covered },
            // A cycle of covered blocks (none is reachable from the entry
            // then, but be safe): check at the one found.
            Err(i) => covered[i] = false,
        }
    }
}

/// Each block's need, or a covered block that is on a cycle of covered
/// blocks.
fn needs(graph: &[(Vec<usize>, i64)], covered: &[bool]) -> Result<Vec<i64>, usize> {
    fn visit(
        i: usize,
        graph: &[(Vec<usize>, i64)],
        covered: &[bool],
        need: &mut [Option<i64>],
        busy: &mut [bool],
    ) -> Result<i64, usize> {
        if let Some(v) = need[i] {
            return Ok(v);
        }
        if busy[i] {
            return Err(i);
        }
        busy[i] = true;
        let mut most = 0;
        for &t in &graph[i].0 {
            if covered[t] {
                most = most.max(visit(t, graph, covered, need, busy)?);
            }
        }
        busy[i] = false;
        let v = graph[i].1 + most;
        need[i] = Some(v);
        Ok(v)
    }
    let mut need = vec![None; graph.len()];
    let mut busy = vec![false; graph.len()];
    (0..graph.len())
        .map(|i| visit(i, graph, covered, &mut need, &mut busy))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(graph: &[(Vec<usize>, i64)], covered: Vec<bool>) -> Result<Vec<i64>, usize> {
        needs(graph, &covered)
    }

    #[test]
    fn a_chain_is_checked_once_for_all_of_it() {
        // 0 -> 1 -> 2, each block covered by the one before.
        let g = vec![(vec![1], 3), (vec![2], 4), (vec![], 5)];
        assert_eq!(plan_of(&g, vec![false, true, true]), Ok(vec![12, 9, 5]));
    }

    #[test]
    fn a_block_covers_the_longest_of_its_successors() {
        let g = vec![(vec![1, 2], 2), (vec![], 7), (vec![], 1)];
        assert_eq!(plan_of(&g, vec![false, true, true]), Ok(vec![9, 7, 1]));
        // An uncovered successor is checked at its own transfer.
        assert_eq!(plan_of(&g, vec![false, false, true]), Ok(vec![3, 7, 1]));
    }

    #[test]
    fn a_cycle_of_covered_blocks_is_reported() {
        let g = vec![(vec![1], 1), (vec![2], 1), (vec![1], 1)];
        assert!(plan_of(&g, vec![false, true, true]).is_err());
    }
}
