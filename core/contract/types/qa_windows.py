"""Windows over a long context, as transformers' ``run_qa.py`` example makes them (Devlin et al. 2019, SQuAD
fine-tuning): ``tokenizer(question, context, truncation="only_second", max_length, stride,
return_overflowing_tokens=True, return_offsets_mapping=True)``.

Each window is one instance: the question and a stretch of the context, consecutive windows sharing ``stride``
context tokens. It keeps its ``example`` (the row it comes from) and, per token, its character offsets in the
context (``[-1, -1]`` for the question, special tokens and padding). A training window's label is the (start,
end) token of the example's first answer, or the [CLS] token twice when the answer is not wholly inside the window.

The stride is at most half the context tokens a window has room for (so that windows advance), and a question
longer than half of ``max_length`` is cut to that many tokens; both are decided per example, so the windows of an
example do not depend on the batch it is encoded in.
"""

from __future__ import annotations

from mtl.errors import MtlError

NO_OFFSET = [-1, -1]


def windows(task, questions: list[str], contexts: list[str], answers: list[dict] | None, tokenizer,
            max_length: int) -> dict[str, list]:
    """The windows of every example, in example order: ``input_ids``, ``token_type_ids`` (when the tokenizer makes
    them), ``length``, ``example`` (0-based within this batch), ``offsets``, ``context`` and, when ``answers`` is
    given, ``labels`` ([start, end] token) and ``answers`` (the gold texts)."""
    if not getattr(tokenizer, "is_fast", False):
        raise MtlError(f"task {task.name!r} (extractive-qa) needs a fast tokenizer (character offsets); "
                       f"{type(tokenizer).__name__} is not one")
    questions = [q.lstrip() for q in questions]  # run_qa.py: leading spaces only waste room
    strides = _strides(task, questions, tokenizer, max_length)
    groups: dict[int, list[int]] = {}
    for i, stride in enumerate(strides):
        groups.setdefault(stride, []).append(i)
    made: list[tuple[int, int, dict]] = []  # (example, window number, window)
    for stride, members in groups.items():
        enc = tokenizer([questions[i] for i in members], [contexts[i] for i in members], truncation="only_second",
                        max_length=max_length, stride=stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True)
        mapping = enc["overflow_to_sample_mapping"]
        for j, sample in enumerate(mapping):
            example = members[sample]
            window = _window(enc, j, tokenizer, answers[example] if answers is not None else None)
            made.append((example, j, window))
    made.sort(key=lambda x: (x[0], x[1]))
    out: dict[str, list] = {"input_ids": [], "length": [], "example": [], "offsets": [], "context": []}
    if "token_type_ids" in (made[0][2] if made else {}):
        out["token_type_ids"] = []
    if answers is not None:
        out["labels"], out["answers"] = [], []
    for example, _, window in made:
        for key in out:
            if key == "example":
                out[key].append(example)
            elif key == "context":
                out[key].append(contexts[example])
            elif key == "answers":
                out[key].append(list(answers[example]["text"]))
            else:
                out[key].append(window[key])
    return out


def _strides(task, questions: list[str], tokenizer, max_length: int) -> list[int]:
    """Each example's stride; cuts (in place) a question longer than half of what a window has room for."""
    special = tokenizer.num_special_tokens_to_add(pair=True)
    cap = max(1, (max_length - special) // 2)
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    strides = []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        n = len(offsets)
        if n > cap:
            questions[i] = questions[i][: offsets[cap - 1][1]]
            n = min(cap, len(tokenizer(questions[i], add_special_tokens=False)["input_ids"]))
        room = max_length - special - n
        strides.append(max(0, min(task.stride, room // 2)))
    return strides


def _window(enc, j: int, tokenizer, answer: dict | None) -> dict:
    ids = enc["input_ids"][j]
    sequence = enc.sequence_ids(j)
    offsets = [list(o) if sequence[k] == 1 else NO_OFFSET for k, o in enumerate(enc["offset_mapping"][j])]
    window = {"input_ids": ids, "length": len(ids), "offsets": offsets}
    if "token_type_ids" in enc:
        window["token_type_ids"] = enc["token_type_ids"][j]
    if answer is not None:
        cls = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
        window["labels"] = label(offsets, sequence, answer, cls)
    return window


def label(offsets: list[list[int]], sequence: list, answer: dict, cls: int) -> list[int]:
    """[start, end] token of the first answer in a window (``run_qa.py``'s ``prepare_train_features``), or
    [cls, cls] when the answer is not wholly inside the window's context."""
    start_char = int(answer["answer_start"][0])
    end_char = start_char + len(answer["text"][0])
    context = [k for k, s in enumerate(sequence) if s == 1]
    if not context:
        return [cls, cls]
    first, last = context[0], context[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return [cls, cls]
    start = first
    while start <= last and offsets[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:
        end -= 1
    return [start - 1, end + 1]
