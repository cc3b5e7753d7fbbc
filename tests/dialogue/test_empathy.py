"""Empathy that names what happened in the customer's own words (issue 16, 4): the
product they named and the wait they told us about, in the same message as the
restatement, before any fact question."""

from __future__ import annotations

from tests.dialogue.conftest import Customer


def _empathy(customer: Customer) -> str:
    """The reply's text up to the restatement: the greeting and the empathy."""
    return customer.text.split("\n\n")[0]


async def test_the_empathy_names_the_product_and_the_wait(anna: Customer) -> None:
    await anna.say(
        "my headphones from order SO20241105123 stopped working, no sound at all. "
        "been waiting 10 days for a reply from your team"
    )
    assert anna.keys[1] == "utter_empathy_mild_product_quality_named"
    assert anna.keys[2] == "utter_empathy_waited"
    assert anna.keys[-1] == "utter_restate_product_quality"
    empathy = _empathy(anna)
    assert "your headphones" in empathy and "10 days" in empathy
    assert "Anna" in empathy  # greeted by name in the same message


async def test_the_same_in_chinese(li: Customer) -> None:
    await li.say("我买的电水壶用了三天就坏了，等了一个星期客服都不回")
    empathy = _empathy(li)
    assert "电水壶" in empathy and "等了一个星期" in empathy
    assert "三天" not in empathy  # three days of use is not a wait
    assert li.keys[-1].startswith("utter_restate_")


async def test_a_duration_that_is_not_a_wait_is_not_mirrored_as_one(anna: Customer) -> None:
    await anna.say("my jacket started falling apart after two weeks, the seams just gave up")
    assert "utter_empathy_waited" not in anna.keys
    assert "two weeks" not in _empathy(anna)
    assert "your jacket" in _empathy(anna)


async def test_without_a_named_product_the_empathy_names_the_kind_of_problem(
    anna: Customer,
) -> None:
    await anna.say("you charged me twice this month and nobody answers my emails")
    assert not any(key.endswith("_named") for key in anna.keys)
    assert any(key.startswith("utter_empathy_") for key in anna.keys)


async def test_a_major_complaint_also_hears_its_wait_named(anna: Customer) -> None:
    await anna.say(
        "ok so I ordered a blender 3 weeks ago and it STILL hasnt arrived. been waiting "
        "3 weeks and every time I call your people say next week. I'm done being patient"
    )
    assert "utter_empathy_major" in anna.keys
    assert anna.keys[anna.keys.index("utter_empathy_major") + 1] == "utter_empathy_waited"
    assert "3 weeks" in _empathy(anna)
    assert "patience" not in anna.text.lower()  # not thanked for a patience they have lost


async def test_a_parcel_weeks_late_is_a_wait_but_being_late_oneself_is_not(
    anna: Customer, li: Customer
) -> None:
    """ "my parcel is 2 weeks late" / "快递晚了两周" name a wait; "I was 5 minutes late to
    the door" does not (actions/waits.py)."""
    await anna.say("my parcel is 2 weeks late and nobody answers my emails")
    assert "utter_empathy_waited" in anna.keys and "2 weeks" in _empathy(anna)
    await li.say("快递晚了两周了，打客服电话也没人接")
    assert "utter_empathy_waited" in li.keys and "两周" in _empathy(li)
    ben = Customer(anna.engine, user_id=4004, name="Ben")
    await ben.say("I was 5 minutes late to the door and the courier just left with my parcel")
    assert "utter_empathy_waited" not in ben.keys
