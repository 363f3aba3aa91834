"""Deterministic text for generate_reference.py: the tokenizer's training corpus and its test cases.

Everything is built from the word lists below with a seeded random.Random, so the corpus (and the
tokenizer trained on it) is reproduced exactly on every run. No downloads.
"""
import random

ENGLISH = """time river garden window morning coffee teacher market summer winter library bridge engine
letter mountain question answer planet signal pocket silver yellow orange purple forest island ocean
kitchen doctor travel number simple little bright quiet gentle strong careful happy early later often
always never maybe because between through around before after under above inside outside table chair
paper pencil camera music dance story history science method system result value memory thread kernel
buffer string vector matrix tensor gradient learning model train batch layer weight token sentence word
letter friend family city country road street house school student water fire stone cloud rain snow
wind light dark green blue red white black small large short long fast slow hot cold new old good bad
first last next every some many few most other same different important possible public private open
close begin finish build break carry change choose climb count cover cross drive enter follow gather
grow hold join keep laugh learn listen measure move notice offer paint plan play pull push reach read
remember repeat return run save search send share show sing sleep speak stand start stay stop study
talk teach think throw touch turn visit wait walk want wash watch wonder work write the a an of to in
and or but is are was were be been has have had do does did will would can could should may might""".split()

CHINESE = ("我们你他她它是的了在有和不这个人中大为上们来到时地说要就出会可也对生能而子那得于着下自之年过发后作里"
           "用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心本前开但因只从想实日军者"
           "意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什"
           "二等产或新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各"
           "入几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克")

OTHER_SCRIPTS = ["привет мир", "Ελληνικά γράμματα", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "こんにちは世界",
                 "안녕하세요 세계", "สวัสดีชาวโลก", "Grüße aus Köln", "façade naïve café", "Ærøskøbing", "Łódź źdźbło"]

EMOJI = ["😀", "🚀", "🌍", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🇫🇷", "🇯🇵", "🏳️‍🌈", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𠀋𠂢", "🧪🔬", "❤️‍🔥", "🦀"]

CODE = ["def add(a, b):\n    return a + b\n", "for (int i = 0; i < n; ++i) { sum += x[i]; }",
        "let total = values.reduce(0, +)", "if x != None and len(x) > 3:\n\tprint(x[0])",
        "SELECT name, count(*) FROM users GROUP BY name;", "const f = (x) => x * 2;",
        "#include <stdio.h>\nint main(void) { return 0; }", "fn main() { println!(\"hi {}\", 42); }",
        "x = {'key': [1, 2, 3], \"other\": None}", "while true; do echo $((i++)); done"]

PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def _sentence(rng, n_min=4, n_max=14):
    words = [rng.choice(ENGLISH) for _ in range(rng.randint(n_min, n_max))]
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice([".", ".", ".", "!", "?", ",", ";"])


def _chinese(rng, n_min=4, n_max=24):
    return "".join(rng.choice(CHINESE) for _ in range(rng.randint(n_min, n_max))) + rng.choice(["。", "，", "！", "？", ""])


def _digits(rng):
    kind = rng.randrange(5)
    if kind == 0:
        return str(rng.randint(0, 10 ** rng.randint(1, 9)))
    if kind == 1:
        return f"{rng.randint(1990, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == 2:
        return f"{rng.uniform(-1000, 1000):.{rng.randint(1, 5)}f}"
    if kind == 3:
        return " ".join(str(rng.randint(0, 999)) for _ in range(rng.randint(2, 6)))
    return f"{rng.randint(1, 99)}% of {rng.randint(100, 9999)} items cost ${rng.randint(1, 500)}.{rng.randint(0, 99):02d}"


def corpus(seed, target_bytes=300_000):
    """Mixed lines (English, Chinese, digits, code, other scripts, emoji) until target_bytes of UTF-8."""
    rng = random.Random(seed)
    lines, size = [], 0
    while size < target_bytes:
        kind = rng.random()
        if kind < 0.45:
            line = " ".join(_sentence(rng) for _ in range(rng.randint(1, 4)))
        elif kind < 0.62:
            line = _chinese(rng)
        elif kind < 0.74:
            line = _digits(rng)
        elif kind < 0.86:
            line = rng.choice(CODE)
        elif kind < 0.93:
            line = rng.choice(OTHER_SCRIPTS) + " " + _sentence(rng, 2, 5)
        else:
            line = _sentence(rng, 2, 6) + " " + "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 3)))
        lines.append(line)
        size += len(line.encode("utf-8")) + 1
    return lines


def tokenizer_cases(seed):
    """(category, text) pairs: hand-picked edge cases per category, then seeded random mixes; 300 in all."""
    rng = random.Random(seed)
    cases = [("empty", "")]
    cases += [("english", t) for t in ["Hello world", "Good morning, teacher!", "the quick silver river",
                                       "It's a test, isn't it?", "They'll say we've won.", "ALL CAPS WORDS HERE",
                                       "mixedCase camelCaseWord snake_case_word", "a", "I", "Don't stop."]]
    cases += [("english", _sentence(rng)) for _ in range(5)]
    cases += [("spaces", t) for t in [" ", "  ", "   leading", "trailing   ", "two  spaces  between", " a b  c   d ",
                                      "word" + " " * 9 + "gap", "\u0020\u0020x"]]
    cases += [("spaces", " " * rng.randint(1, 6) + _sentence(rng, 2, 4) + " " * rng.randint(0, 4)) for _ in range(4)]
    cases += [("whitespace", t) for t in ["line one\nline two", "\n", "\n\n\n", "tab\tseparated\tvalues", "\t\t",
                                          "windows\r\nline end", "\r\n\r\n", "nbsp\u00a0here", "ideographic\u3000space",
                                          "mixed \t\n\r whitespace", "  \n  indented\n    more", "end with newline\n",
                                          "\u2028line separator", "thin\u2009space", "em\u2003space", "\v\f"]]
    cases += [("digits", t) for t in ["0", "7", "42", "123", "1234", "12345678901234567890", "3.14159", "-0.5",
                                      "1,000,000", "2026-12-07", "10:45:00", "0x1F", "1e-5", "99%", "v2.3.1"]]
    cases += [("digits", _digits(rng)) for _ in range(6)]
    cases += [("punctuation", t) for t in [PUNCT, "...", "!!!", "?!", "--", "(a)", "[b]", "{c}", "\"quoted\"",
                                           "'single'", "a-b_c.d", "email@example.com", "https://example.org/path?q=1",
                                           "#hashtag", "@mention", "¿Qué?", "«guillemets»", "“curly”", "—dash—"]]
    cases += [("chinese", t) for t in ["你好", "我们是学生。", "中文和English混合", "数字123和标点，！"]]
    cases += [("chinese", _chinese(rng)) for _ in range(6)]
    cases += [("other_scripts", t) for t in OTHER_SCRIPTS]
    cases += [("emoji_4byte", t) for t in EMOJI]
    cases += [("mixed", t) for t in ["价格 is $5.00 😀", "Tokyo 東京 Τόκιο", "x² + y² = z²", "naïve résumé 日本",
                                     "ok👍🏽ok"]]
    cases += [("code", t) for t in CODE]
    cases += [("special_tokens", t) for t in ["<|endoftext|>", "<|im_start|>", "<|im_end|>",
                                              "<|im_start|>user\nhello<|im_end|>\n",
                                              "<|im_start|>assistant\n", "text<|endoftext|>more",
                                              "<|im_end|><|im_start|>", "<|im_start", "im_start|>", "<|im_end",
                                              "<|IM_START|>", "< |im_start| >", "<<|im_end|>>", "<|endoftext|>\n",
                                              " <|im_start|> ", "<|im_start|><|im_start|>", "<|endoftext"]]
    for _ in range(13):
        n = rng.randint(200, 1000)
        parts, size = [], 0
        while size < n:
            p = _sentence(rng) if rng.random() < 0.6 else _chinese(rng)
            parts.append(p)
            size += len(p)
        cases.append(("long", " ".join(parts)[:n]))
    pools = [lambda: rng.choice(ENGLISH), lambda: rng.choice(CHINESE), lambda: rng.choice(EMOJI),
             lambda: rng.choice(PUNCT), lambda: str(rng.randint(0, 9999)), lambda: rng.choice([" ", "  ", "\n", "\t"]),
             lambda: rng.choice(OTHER_SCRIPTS).split()[0], lambda: rng.choice(["<|im_start|>", "<|im_end|>", "<|im_"])]
    while len(cases) < 300:
        cases.append(("random_mix", "".join(rng.choice(pools)() for _ in range(rng.randint(1, 12)))))
    return cases
