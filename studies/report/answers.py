"""The short answers, in English and in Simplified Chinese: two templates over the same facts.

Every number comes from ``facts.Facts`` and is printed with ``facts.pc``, ``facts.ep`` or
``facts.num``; a paragraph or clause whose numbers are missing is left out, in both languages.
"""

from __future__ import annotations

from .facts import Facts, ep, num, pc
from .program import Change
from .text import words
from .verdicts import Verdict

MOST = 0.5  # "most seeds": more than this share
POWER_LAW_K = -0.5  # a fitted exponent whose interval lies below this is a falling power law
VERDICT_ZH = {
    "holds": "成立",
    "partly holds": "部分成立",
    "does not hold": "不成立",
    "misattributed": "归因错误",
    "misdiagnosed": "诊断错误",
    "not decided by this run": "本次运行无法判定",
    "not measured": "未测量",
}


def _hidden(x: Facts) -> int:
    return len(x.shape.split("-")) - 2


def _overlap(a, b) -> bool:
    return not (a.hi < b.lo or b.hi < a.lo)


# ---- English ----------------------------------------------------------------------------------


def _medians(x: Facts, labels: dict[str, str], arrow: str, sep: str) -> str:
    """``tanh 3,262 as written → 430 with … → 207 with …; sigmoid 14,313 → 3,622 → 396``: each
    activation's medians as written, with the targets halved and with a linear output. The
    ``labels`` are templates (``{}`` = the median), written out for the first activation and
    for any that has other variants."""
    out, first = [], None
    for s in x.smooth:
        parts = [(k, e) for k, e in (("as_written", s.as_written), ("halved", s.halved),
                                     ("linear", s.linear)) if e is not None]
        if not parts:
            continue
        keys = [k for k, _ in parts]
        named = first is None or keys != first
        first = keys if first is None else first
        out.append(f"{s.activation} " + arrow.join(
            (labels[k] if named else "{}").format(ep(e)) for k, e in parts))
    return sep.join(out)


def _plateau_en(x: Facts) -> list[str]:
    out = []
    for s in x.smooth:
        if s.plateau is None or not s.plateau.count or s.plateau.share < MOST:
            continue
        text = (f"Most {s.activation} seeds ({pc(s.plateau.share)}) first sit for a long time at "
                f"an error of `{s.plateau_level:.6f}`, where the network predicts the mean target "
                "for every input")
        left = s.plateau_left
        if left is not None and left.count == left.n:
            text += "; all of them later leave it: a plateau, not a local minimum."
        elif left is not None and left.count:
            text += (f"; {pc(left.share)} of them leave it within {x.tail_budget:,} epochs: a "
                     "plateau they escape, not a local minimum.")
        else:
            text += f"; none left it within the {x.tail_budget:,} epochs of this run."
        out.append(text)
    return out


def _slow_en(x: Facts) -> list[str]:
    said = []
    shrink = _shrinking(x)
    if x.output_isolated:
        text = ("Because of the output unit, not vanishing gradients: a sigmoid or tanh output "
                "can only approach the top of its range, and your largest targets sit there, "
                "where its slope shrinks")
        if shrink:
            text += (f" (on the target {num(shrink[0].slope_target)}, from "
                     + " and from ".join(f"{num(s.slope_init)} to {num(s.slope_end)} with "
                                         f"{s.activation}" for s in shrink)
                     + f" by epoch {x.budget:,})")
        said.append(text + ".")
    ratios = [s for s in x.smooth if s.ratio_z is not None]
    if ratios and _hidden(x) >= 2:  # with one hidden layer, first and last are the same
        said.append(f"Nothing vanishes through the layers: in your {x.shape} network the error "
                    "reaching the first hidden layer at initialisation is "
                    + " and ".join(f"{num(s.ratio_z)} ({s.activation})" for s in ratios)
                    + " times the one at the last hidden layer.")
    medians = _medians(x, {"as_written": "{} as written",
                           "halved": "{} with the targets halved into the output's range",
                           "linear": "{} with a linear output unit"}, " → ", "; ")
    if medians:
        said.append(f"Median epochs to reach an error of {x.threshold:g}, on the same seeds "
                    f"({x.budget:,}-epoch budget): {medians}.")
    if x.bias_fix:
        said.append("Your bias line adds to it: fixing only that line cuts the median epochs to "
                    + " and ".join(f"{num(r)} ({a})" for a, r in x.bias_fix)
                    + " of the program's.")
    out = []
    if said:
        out.append("**Why sigmoid and tanh need so many epochs.** " + " ".join(said))
    return out + _plateau_en(x)


def _shrinking(x: Facts) -> list:
    """The smooth activations whose output slope is the factor that shrinks, when every one
    measured is (the sentence is about sigmoid and tanh together)."""
    measured = [s for s in x.smooth if s.slope_end is not None and s.ratio_z_min is not None]
    return measured if measured and all(s.slope_shrinks for s in measured) else []


def _power_law(s) -> bool:
    """The tail was fitted and clearly falls as a power of the epoch (k well below 0)."""
    return s.tail_k is not None and s.tail_hi is not None and s.tail_hi < POWER_LAW_K


def _zero_en(x: Facts) -> list[str]:
    fits = [s for s in x.smooth if _power_law(s)]
    if not fits:
        return []
    text = ("**Why the error never reaches zero.** Near the targets the loss falls as a power "
            "of the epoch, t^k, with k = "
            + " and ".join(f"{num(s.tail_k)} ({s.activation})" for s in fits))
    if x.theory_k is not None:
        text += f"; an output chasing its asymptote gives k = {num(x.theory_k)}"
    text += ". It keeps shrinking, ever more slowly, and never becomes exactly zero."
    zeros = [s for s in fits if s.reads_zero is not None]
    if zeros:
        text += (f" Printed with `%f` after {x.budget:,} epochs it reads `0.000000` for "
                 + " and ".join(f"{pc(s.reads_zero.share)} of {s.activation} seeds"
                                for s in zeros) + ".")
    return [text]


def _relu_en(x: Facts) -> list[str]:
    r = x.relu
    if r is None:
        return []
    said = []
    if r.failed is not None:
        said.append(f"{pc(r.failed.share)} of the seeds (lr {r.lr:g}) never get the error below "
                    f"{x.threshold:g} in {x.budget:,} epochs.")
    if r.stuck is not None:
        said.append(f"In {pc(r.stuck.share)} the gradient is exactly zero at the end: the ReLUs "
                    f"on the way to the output are off for all {x.n_samples} inputs, so the "
                    "output is the same for every input and no update can change it.")
    if r.dead_at_init is not None and r.born_dead is not None:
        text = (f"Your guess is {_guess_en(r)}. Before the first update the output is already "
                f"off on every input in {pc(r.dead_at_init.share)} of {r.init_seeds:,} seeds; "
                f"{pc(r.born_dead.share)} of all seeds fail that way")
        if r.died is not None and r.alive is not None:
            text += (f", {pc(r.died.share)} die during training and {pc(r.alive.share)} fail "
                     "while still alive")
        text += "."
        if r.dead_at_init_zero_bias is not None:
            text += (f" Xavier or He weights with zero biases do not help "
                     f"({pc(r.dead_at_init_zero_bias.share)} dead at the start).")
        said.append(text)
    if r.dead_print is not None and r.failed_print_dead is not None:
        said.append(f"A seed that fails prints `error = {r.dead_print:.6f}` for ever "
                    f"({r.failed_print_dead.count} of the {r.failed_print_dead.n} failed seeds), "
                    "the error of an output stuck at zero.")
    return ["**Why ReLU sometimes never learns.** " + " ".join(said)] if said else []


def _initialisation_decides(r) -> bool:
    """Seeds that fail born dead are most of the failures."""
    return r.failed is not None and r.born_dead.count * 2 > r.failed.count


def _guess_en(r) -> str:
    return ("right: mostly it is the initialisation" if _initialisation_decides(r)
            else "only partly right: the initialisation decides some of the failures")


def _guess_zh(r) -> str:
    return ("你的猜测是对的：主要原因就是权重初始化。" if _initialisation_decides(r)
            else "你的猜测只对了一部分：初始化只决定了部分失败。")


def _fast_en(x: Facts) -> list[str]:
    r = x.relu
    if r is None or r.converged_median is None or not r.converged_median.reached:
        return []
    text = ("**Why ReLU is fast when it works.** A ReLU output is unbounded, with slope exactly 1 "
            "wherever it is on, so nothing slows it near the targets")
    if x.converged_at_lr:
        first, *rest = x.converged_at_lr
        text += (f": at the same lr {x.converged_lr:g}, the seeds that converge need a median of "
                 f"{ep(first[1])} epochs with {first[0]}, against "
                 + words([f"{ep(e)} with {a}" for a, e in rest]) + ".")
    else:
        text += (f": the seeds that converge need a median of {ep(r.converged_median)} epochs "
                 f"(lr {r.lr:g}).")
    if r.reads_zero is not None:
        text += (f" The \"zero\" you saw is an error too small for six decimals: "
                 f"{pc(r.reads_zero.share)} of ReLU seeds print `0.000000` after "
                 f"{x.budget:,} epochs.")
    if x.fixed_relu is not None and x.fixed_tanh is not None:
        others = [f"tanh {ep(x.fixed_tanh)}"] + (
            [f"sigmoid {ep(x.fixed_sigmoid)}"] if x.fixed_sigmoid is not None else [])
        text += (f" In the corrected program (linear output, biases fixed; lr {x.fixed_lr:g}, "
                 f"same seeds) ReLU needs {ep(x.fixed_relu)} epochs, " + " and ".join(others))
        if _overlap(x.fixed_relu, x.fixed_tanh):
            text += (": as fast — ReLU's speed in your program is its output unit, not ReLU "
                     "itself.")
        elif x.fixed_tanh.hi < x.fixed_relu.lo:
            text += (": tanh is then faster — ReLU's speed in your program is its output unit, "
                     "not ReLU itself.")
        else:
            text += ": ReLU stays faster, so part of its speed is the activation's own slope"
            tanh = _tanh_linear(x)
            if tanh is not None:
                text += (f"; the larger part, in your program, is the output unit (tanh: "
                         f"{ep(tanh.as_written)} → {ep(tanh.linear)} epochs with a linear "
                         "output)")
            text += "."
    return [text]


def _tanh_linear(x: Facts):
    """tanh's program, when a linear output makes it more than twice as fast (else None)."""
    s = next((s for s in x.smooth if s.activation == "tanh"), None)
    if s is None or s.as_written is None or s.linear is None or not s.linear.measured:
        return None
    return s if s.linear.hi * 2 < s.as_written.lo else None


def _verdicts_en(x: Facts, v: dict[str, Verdict]) -> list[str]:
    text = (f"**The answer you were given.** \"Vanishing gradients\": *{v['vanishing'].word}*. "
            f"\"Local minima\": *{v['local_minima'].word}*. \"Use momentum\": "
            f"*{v['momentum'].word}*.")
    r = x.relu
    if r is not None and r.stuck is not None and r.momentum_stuck is not None:
        text += (f" With momentum {num(r.momentum)}, {pc(r.momentum_stuck.share)} of the same "
                 f"seeds end stuck instead of {pc(r.stuck.share)}")
        if r.momentum_matched_stuck is not None:
            text += (f"; even with the lr multiplied by {num(1 - r.momentum)}, so that the "
                     "step matches plain SGD's, "
                     f"{pc(r.momentum_matched_stuck.share)}")
        text += ". A dead network has no gradient for momentum to accumulate."
    return [text]


SEED_EN = ("_A seed is one run of your program from its own random starting weights "
           "(`np.random.seed(k)`); every number below is over many seeds._")
SEED_ZH = ("_“种子”指用 `np.random.seed(k)` 得到的一组随机初始权重，即你的程序的一次运行；"
           "下文的数字都来自很多个种子。_")


def short_answer_en(x: Facts, v: dict[str, Verdict], changes: tuple[Change, ...]) -> str:
    paras = [SEED_EN, *_slow_en(x), *_zero_en(x), *_relu_en(x), *_fast_en(x), *_verdicts_en(x, v)]
    if changes:
        paras.append("**Change these lines** (the corrected program below makes exactly these "
                      "changes):\n\n" + "\n".join(f"- `{c.before}` → `{c.after}`: {c.en}"
                                                     for c in changes))
    return "\n\n".join(paras)


# ---- 中文 (Simplified Chinese) -------------------------------------------------------------


def _plateau_zh(x: Facts) -> list[str]:
    out = []
    for s in x.smooth:
        if s.plateau is None or not s.plateau.count or s.plateau.share < MOST:
            continue
        text = (f"大多数 {s.activation} 种子（{pc(s.plateau.share)}）会先在误差 "
                f"`{s.plateau_level:.6f}` 处停留很久，此时网络对每个输入都只输出目标值的平均数")
        left = s.plateau_left
        if left is not None and left.count == left.n:
            text += "；之后它们全部离开了这里：这是平台期（plateau），不是局部最小值。"
        elif left is not None and left.count:
            text += (f"；其中 {pc(left.share)} 在 {x.tail_budget:,} 个周期内离开了这里："
                     "这是可以走出的平台期（plateau），不是局部最小值。")
        else:
            text += f"；在本次运行的 {x.tail_budget:,} 个周期内，没有一个离开。"
        out.append(text)
    return out


def _slow_zh(x: Facts) -> list[str]:
    said = []
    shrink = _shrinking(x)
    if x.output_isolated:
        text = ("原因在输出单元，而不是梯度消失：Sigmoid 或 Tanh 输出只能逼近其取值范围的上限，"
                "而你最大的目标值正好落在那里，那里的斜率越来越小")
        if shrink:
            text += (f"（在目标值 {num(shrink[0].slope_target)} 上，到第 {x.budget:,} 个周期，"
                     + "，".join(f"使用 {s.activation} 时从 {num(s.slope_init)} 降到 "
                                f"{num(s.slope_end)}" for s in shrink) + "）")
        said.append(text + "。")
    ratios = [s for s in x.smooth if s.ratio_z is not None]
    if ratios and _hidden(x) >= 2:  # with one hidden layer, first and last are the same
        said.append(f"梯度并没有在层与层之间消失：在你的 {x.shape} 网络中，初始化时传到第一个"
                    "隐藏层的误差是最后一个隐藏层的 "
                    + "、".join(f"{num(s.ratio_z)} 倍（{s.activation}）" for s in ratios) + "。")
    medians = _medians(x, {"as_written": "原程序 {}", "halved": "目标值减半、落入输出范围后 {}",
                           "linear": "改用线性输出单元后 {}"}, " → ", "；")
    if medians:
        said.append(f"在相同的随机种子上（预算 {x.budget:,} 个周期），把误差降到 {x.threshold:g} "
                    f"所需周期数的中位数：{medians}。")
    if x.bias_fix:
        said.append("你的偏置更新那一行也在拖慢训练：只修正这一行，所需周期数的中位数就降到原来的 "
                    + "、".join(f"{num(r)}（{a}）" for a, r in x.bias_fix) + "。")
    out = []
    if said:
        out.append("**为什么 Sigmoid 和 Tanh 需要这么多个周期。** " + "".join(said))
    return out + _plateau_zh(x)


def _zero_zh(x: Facts) -> list[str]:
    fits = [s for s in x.smooth if _power_law(s)]
    if not fits:
        return []
    text = ("**为什么误差永远到不了零。** 接近目标时，损失按周期数的幂次 t^k 下降，测得 k = "
            + "，".join(f"{num(s.tail_k)}（{s.activation}）" for s in fits))
    if x.theory_k is not None:
        text += f"；输出逼近其渐近线时，理论值为 k = {num(x.theory_k)}"
    text += "。误差会一直变小，而且越来越慢，但永远不会恰好等于零。"
    zeros = [s for s in fits if s.reads_zero is not None]
    if zeros:
        text += (f"训练 {x.budget:,} 个周期后，用 `%f` 打印时显示为 `0.000000` 的比例为："
                 + "，".join(f"{s.activation} {pc(s.reads_zero.share)}" for s in zeros) + "。")
    return [text]


def _relu_zh(x: Facts) -> list[str]:
    r = x.relu
    if r is None:
        return []
    said = []
    if r.failed is not None:
        said.append(f"在学习率 {r.lr:g} 下，{pc(r.failed.share)} 的随机种子在 {x.budget:,} 个周期内"
                    f"始终无法把误差降到 {x.threshold:g} 以下。")
    if r.stuck is not None:
        said.append(f"其中 {pc(r.stuck.share)}（占全部种子）在训练结束时梯度恰好为零：通往输出的 "
                    f"ReLU 对全部 {x.n_samples} 个输入都处于关闭状态，网络对任何输入都给出同一个"
                    "输出，任何更新都无法改变它。")
    if r.dead_at_init is not None and r.born_dead is not None:
        text = (f"{_guess_zh(r)}在第一次更新之前，{r.init_seeds:,} 个种子中已有 "
                f"{pc(r.dead_at_init.share)} 的输出对所有输入都是关闭的；"
                f"{pc(r.born_dead.share)} 的种子就这样失败（生来即死）")
        if r.died is not None and r.alive is not None:
            text += f"，{pc(r.died.share)} 在训练中死亡，{pc(r.alive.share)} 在仍然存活时失败"
        text += "。"
        if r.dead_at_init_zero_bias is not None:
            text += (f"改用 Xavier 或 He 权重并把偏置设为零也没有用（一开始仍有 "
                     f"{pc(r.dead_at_init_zero_bias.share)} 是死的）。")
        said.append(text)
    if r.dead_print is not None and r.failed_print_dead is not None:
        said.append(f"失败的种子会一直打印 `error = {r.dead_print:.6f}`（{r.failed_print_dead.n} "
                    f"个失败种子中有 {r.failed_print_dead.count} 个），这正是输出恒为零时的误差。")
    return ["**为什么 ReLU 有时完全学不动。** " + "".join(said)] if said else []


def _fast_zh(x: Facts) -> list[str]:
    r = x.relu
    if r is None or r.converged_median is None or not r.converged_median.reached:
        return []
    text = ("**为什么 ReLU 一旦奏效就更快。** ReLU 输出没有上界，只要处于开启状态，斜率就恰好"
            "是 1，接近目标值时不会被减速")
    if x.converged_at_lr:
        text += (f"：在相同的学习率 {x.converged_lr:g} 下，收敛的种子所需周期数的中位数为 "
                 + "，".join(f"{a} {ep(e)}" for a, e in x.converged_at_lr) + "。")
    else:
        text += f"：收敛的种子所需周期数的中位数是 {ep(r.converged_median)}（学习率 {r.lr:g}）。"
    if r.reads_zero is not None:
        text += (f"你看到的“零”只是误差小到六位小数显示不出来：训练 {x.budget:,} 个周期后，"
                 f"{pc(r.reads_zero.share)} 的 ReLU 种子打印出 `0.000000`。")
    if x.fixed_relu is not None and x.fixed_tanh is not None:
        text += (f"在修正后的程序中（线性输出、偏置已修正；学习率 {x.fixed_lr:g}，"
                 f"相同的随机种子），ReLU 需要 {ep(x.fixed_relu)} 个周期，"
                 f"Tanh 需要 {ep(x.fixed_tanh)} 个")
        if x.fixed_sigmoid is not None:
            text += f"，Sigmoid 需要 {ep(x.fixed_sigmoid)} 个"
        if _overlap(x.fixed_relu, x.fixed_tanh):
            text += ("：两者一样快——在你的程序里，ReLU 的速度来自它的输出单元，"
                     "而不是 ReLU 本身。")
        elif x.fixed_tanh.hi < x.fixed_relu.lo:
            text += ("：此时 Tanh 反而更快——在你的程序里，ReLU 的速度来自它的输出单元，"
                     "而不是 ReLU 本身。")
        else:
            text += "：ReLU 仍然更快，所以它的速度有一部分来自激活函数本身的斜率"
            tanh = _tanh_linear(x)
            if tanh is not None:
                text += (f"；而在你的程序里，更大的部分来自输出单元（tanh 换成线性输出后从 "
                         f"{ep(tanh.as_written)} 个周期降到 {ep(tanh.linear)} 个）")
            text += "。"
    return [text]


def _verdicts_zh(x: Facts, v: dict[str, Verdict]) -> list[str]:
    text = (f"**你得到的回答。** “梯度消失”：*{VERDICT_ZH[v['vanishing'].word]}*。"
            f"“局部最小值”：*{VERDICT_ZH[v['local_minima'].word]}*。"
            f"“使用动量”：*{VERDICT_ZH[v['momentum'].word]}*。")
    r = x.relu
    if r is not None and r.stuck is not None and r.momentum_stuck is not None:
        text += (f"使用动量 {num(r.momentum)} 时，同一批种子中有 {pc(r.momentum_stuck.share)} "
                 f"最终卡住，而普通 SGD 是 {pc(r.stuck.share)}")
        if r.momentum_matched_stuck is not None:
            text += (f"；即使把学习率乘以 {num(1 - r.momentum)}，使等效步长与普通 SGD 相同，"
                     f"仍有 {pc(r.momentum_matched_stuck.share)}")
        text += "。一个死掉的网络没有梯度，动量也就无从累积。"
    return [text]


def short_answer_zh(x: Facts, v: dict[str, Verdict], changes: tuple[Change, ...]) -> str:
    paras = [SEED_ZH, *_slow_zh(x), *_zero_zh(x), *_relu_zh(x), *_fast_zh(x), *_verdicts_zh(x, v)]
    if changes:
        paras.append("**需要修改的代码行**（下文的修正程序恰好做了这些修改）：\n\n"
                     + "\n".join(f"- `{c.before}` → `{c.after}`：{c.zh}" for c in changes))
    return "\n\n".join(paras)

