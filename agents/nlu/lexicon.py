"""The built-in intent lexicon: weighted patterns over normalized text, per intent.

Normalized text is lowercase words with contractions expanded ("do not", "can not", "i am",
"what is"), so patterns are written that way. Weights: about 2 for a phrase that settles the
intent on its own, 1 to 1.5 for a strong keyword, below 1 for a hint that needs company.
"""

from __future__ import annotations

# Intents that answer or frame the conversation; a real request in the same breath wins.
CONVERSATIONAL = frozenset({"greeting", "goodbye", "affirm", "deny"})
# Actions a caller can say they do NOT want ("i do not want to cancel").
NEGATABLE = frozenset({
    "cancellation", "cancel_appointment", "book_appointment", "reschedule_appointment", "payment",
    "new_service", "update_details",
})

_APPT_WORDS = "appointment|appointments|appt|visit|booking|reservation|consultation|service call"
_JOB_WORDS = "installation|install|technician|tech|engineer"
_APPT = f"(?:{_APPT_WORDS})"
_APPT_OR_JOB = f"(?:{_APPT_WORDS}|{_JOB_WORDS})"
_DET = r"(?:my |the |our |this |that |an |a |your )?"

INTENT_PATTERNS: dict[str, list[tuple[str, float]]] = {
    "greeting": [
        (r"^(?:(?:yes|so|oh|well|um|okay|ok) )?(?:hi|hello|hey|hiya|howdy|hullo|hallo|greetings|yo)\b", 1.0),
        (r"\bgood (?:morning|afternoon|evening|day)\b", 0.9),
        (r"\b(?:hi|hello|hey) there\b", 0.6),
        (r"\bhow are you(?: doing)?\b|\bhow is it going\b|\bhow are things\b", 0.7),
        (r"\bcan you hear me\b|\b(?:is )?(?:anybody|anyone|someone|somebody) there\b|\b(?:are )?you there\b", 0.9),
        (r"\b(?:hi|hello|hey)\b", 0.6),
    ],
    "billing_balance": [
        (r"\bbalance\b", 1.0),
        (r"\b(?:how much|what) (?:do|did|does) (?:i|we) owe\b|\b(?:i|we) owe\b", 1.4),
        (r"\b(?:my|the|this|last|next|latest|monthly|current|recent|a) (?:bill|invoice|statement)\b", 0.9),
        (r"\bbill(?:s|ed|ing)?\b|\binvoices?\b|\bstatements?\b", 0.6),
        (r"\b(?:amount|payment|balance|bill) due\b|\bdue date\b|\bwhen is (?:my |the )?(?:bill|payment) due\b|\bdue\b", 1.2),
        (r"\bcharge[ds]?\b|\bcharging\b|\bovercharged\b|\bdouble charged\b|\bcharged twice\b", 0.9),
        (r"\b(?:so|too|very|really) (?:high|much|expensive)\b|\bwhy is my bill\b|\bhigher than\b", 0.9),
        (r"\bhow much (?:is|was) (?:my|the)\b|\bhow much do i\b", 1.0),
        (r"\boutstanding\b|\bamount owed\b|\bowing\b", 1.0),
    ],
    "payment": [
        (r"\bpay\b|\bpaying\b|\bpaid\b", 1.0),
        (r"\bpay (?:off |down )?(?:my|the|this|that|a|your|off|it|bill|balance|invoice|account|what i owe)\b", 1.6),
        (r"\b(?:make|making|submit|send|sending|process) (?:a |the |my |another )?payments?\b", 1.8),
        (r"\bpayments?\b", 0.7),
        (r"\b(?:auto ?pay|automatic payments?|auto payments?|direct debit|recurring payments?|autopay|payment plan)\b", 1.5),
        (r"\b(?:credit|debit) card\b|\bby (?:card|check|cheque)\b|\bwith (?:my|a) card\b|\bcard number\b", 0.7),
        (r"\b(?:already|just) paid\b|\bi paid\b|\bsent (?:a |the |my )?payment\b|\bpayment (?:went through|posted)\b", 1.3),
        (r"\bsettle\b|\bsettling\b|\bclear (?:my|the) balance\b", 1.3),
        (r"\bpay (?:over|by|with|online|through|via|using)\b", 1.3),
    ],
    "technical_support": [
        (r"\b(?:not|never|is not|are not|does not|do not|stopped|stop) (?:working|loading|connecting|responding|turning on|charging)\b", 1.4),
        (r"\b(?:is|went|goes|keeps going|are|was) (?:down|offline|out|dead)\b", 1.2),
        (r"\bkeeps? (?:\w+ )?(?:dropping|crashing|freezing|cutting out|disconnecting|buffering|rebooting|restarting|"
         r"going out|going down|losing|kicking me|logging me out)\b", 1.5),
        (r"\b(?:crash(?:es|ed|ing)?|frozen|freez(?:es|ing)|glitch\w*|buffering|lagging|laggy|slow|outage|"
         r"disconnect(?:ed|s|ing)|dropping|drops|reboot\w*|restart\w*)\b", 1.1),
        (r"\bno (?:signal|service|internet|connection|dial tone|picture|sound|wifi|bars|reception|power)\b", 1.4),
        (r"\b(?:error|errors|error message|broken|blinking|flashing|red light|orange light)\b", 1.0),
        (r"\b(?:will not|does not|can not|would not|did not) (?:turn on|connect|load|work|start|open|sync|boot)\b", 1.4),
        (r"\bcan not (?:connect|log ?in|sign ?in|access|get online|get on|get into|get in|log on|get connected|stream|call|hear)\b", 1.5),
        (r"\b(?:trouble|problem|problems|issue|issues|help) (?:with|logging|signing|connecting)\b", 0.8),
        (r"\b(?:technical|tech) (?:support|issue|problem|help|difficulties)\b|\btroubleshoot\w*\b", 1.5),
        (r"\b(?:reset|forgot|forgotten) (?:my )?password\b|\blocked out\b", 1.3),
        (r"\b(?:internet|wifi|router|modem|connection|network|signal|app|website|tv|cable box|remote|screen|device)\b", 0.4),
    ],
    "account_info": [
        (r"\baccount (?:number|details|info|information|status|summary|holder)\b", 1.2),
        (r"\bwhat (?:plan|package|tier|services?|speed|plans|packages) (?:am i|do i|i am|i have|do we|are we|we have)\b", 1.5),
        (r"\b(?:my|current|the) (?:plan|package|tier)\b", 0.7),
        (r"\b(?:contract|agreement|term|subscription) (?:end|ends|expire\w*|up|renew\w*|finish\w*)\b|\bwhen (?:does|is|will) my (?:contract|agreement)\b", 1.5),
        (r"\bon file\b|\blisted on\b|\bwho is (?:on|listed on) (?:my|the) account\b|\bregistered (?:to|under)\b", 1.4),
        (r"\b(?:is|was) my account (?:active|open|closed|suspended|still)\b", 1.4),
        (r"\b(?:look up|check|pull up|review|access|see) (?:my|the) account\b|\b(?:information|details|info) (?:on|about|for) (?:my|the) account\b", 1.3),
        (r"\b(?:customer|member|client|subscriber) (?:id|number)\b", 1.3),
        (r"\bwhat (?:is|are) (?:the|my) (?:address|email|phone number|name|details|services|plan)\b", 1.0),
        (r"\bwhat services\b|\bservices i have\b|\bwhat i have\b|\bdo i have right now\b", 1.0),
        (r"\bmy account\b", 0.4),
    ],
    "update_details": [
        (r"\b(?:change|update|updating|correct|fix|edit|modify|amend|changing) " + _DET +
         r"(?:\w+ )?(?:address|adress|phone|phone number|number|"
         r"email|name|last name|first name|contact|contact info|contact information|contact details|details|"
         r"info|information|spelling|password|payment method|card on file|username)\b", 1.9),
        (r"\b(?:i|we) (?:have |just )?moved\b|\bmoving (?:house|to a new)\b", 1.4),
        (r"\bnew (?:address|phone number|number|email|email address|last name|contact)\b|\bgot (?:a )?new (?:number|phone number|email)\b", 1.4),
        (r"\bgot married\b|\bname (?:changed|change)\b|\bmy (?:last )?name (?:has )?changed\b|\bspelling of my name\b|\bmisspelled\b", 1.5),
        (r"\bupdate\b|\bupdating\b", 0.8),
        (r"\bchange\b", 0.3),
    ],
    "new_service": [
        (r"\b(?:sign up|signup|sign me up|subscribe|enroll|join|register)\b", 1.5),
        (r"\b(?:add|adding|get|getting|order|buy|purchase|start|open|set up|setup|install|activate|want|like) "
         r"(?:a |an |another |the |your |some |more )?(?:new )?(?:extra )?(?:line|lines|phone line|account|service|plan|"
         r"package|internet|tv|cable|phone|fiber|security|home security|streaming|bundle|channels?)\b", 1.3),
        (r"\b(?:upgrade|upgrading|downgrade)\b", 1.5),
        (r"\b(?:change|switch|changing|switching) (?:my |our |the )?(?:plan|package|tier|speed)\b", 1.6),
        (r"\binterested in\b", 1.1),
        (r"\b(?:quote|pricing|price list|how much (?:is|does|would|for) (?:it|the|your|a))\b", 1.1),
        (r"\b(?:deals?|promotions?|promos?|offers?|specials?) (?:for|on)\b|\bnew customers?\b", 1.1),
        (r"\bnew (?:line|account|service|plan|customer|package)\b|\banother (?:line|phone line)\b", 1.1),
        (r"\bhow (?:do|can) i (?:sign up|join|get started|get service|become a customer)\b", 1.6),
        (r"\b(?:internet|service|tv|cable|fiber|phone) installed\b|\bstart service\b", 1.3),
        (r"\bbusiness plans?\b|\bplans (?:do you|you) (?:offer|have)\b", 1.0),
    ],
    "cancellation": [
        (r"\bcancel\w*\b", 1.2),
        (r"\b(?:close|terminate|end|discontinue|stop|shut off|shut down|disconnect|deactivate|cancel|quit|drop) " + _DET +
         r"(?:service|services|account|subscription|contract|membership|internet|plan|line|cable|tv|phone|everything|policy)\b", 1.9),
        (r"\b(?:terminate|discontinue|unsubscribe|close out)\b", 1.2),
        (r"\b(?:do not|no longer) (?:want|need) (?:your|the|this|my|any) (?:service|internet|plan|account|subscription)\b", 1.9),
        (r"\bswitching (?:providers|companies|carriers|to)\b|\bleaving (?:you|your company)\b|\bgoing with (?:another|a different)\b", 1.3),
    ],
    "complaint": [
        (r"\b(?:complaint|complain|complaining|formal complaint|grievance)\b", 1.7),
        (r"\b(?:unhappy|not happy|dissatisfied|disappointed|frustrated|furious|angry|upset|fed up|sick of|tired of|"
         r"annoyed|outraged|livid|not satisfied)\b", 1.3),
        (r"\b(?:ridiculous|unacceptable|terrible|horrible|awful|worst|pathetic|disgusting|useless|incompetent|"
         r"rude|unprofessional|disrespectful|appalling|shocking|lousy)\b", 1.3),
        (r"\b(?:nobody|no one|noone|never) (?:showed up|came|called back|called|turned up|showed)\b|\bno show\b|\bstood me up\b", 2.2),
        (r"\b(?:third|fourth|fifth|many|multiple|several|\d+) times?\b(?: \w+){0,4} (?:called|calling|call)\b|\bkeep (?:calling|having to call)\b", 1.3),
        (r"\b(?:been )?waiting (?:for )?(?:weeks|days|months|ages|forever)\b", 1.2),
        (r"\b(?:how i was|the way i was|was|been) treated\b|\btreating me\b", 1.4),
        (r"\bnot (?:good enough|okay|acceptable|fair)\b|\bthis is a joke\b|\bthis is crazy\b", 1.2),
    ],
    "book_appointment": [
        (r"\b(?:book|schedule|make|set up|setup|arrange|get|need|want|like|request|have) (?:me )?(?:in )?(?:for )?"
         r"(?:a |an |another |the |some )?(?:\w+ )?" + _APPT_OR_JOB + r"\b", 1.8),
        (r"\bbook\w*\b|\bschedul(?:e|ing)\b", 1.0),
        (r"\b" + _APPT + r"\b", 0.6),
        (r"\b(?:come out|come by|come over|come and|come fix|come to|send (?:someone|somebody|a technician|a tech|out))\b", 1.1),
        (r"\b(?:book|schedule|reserve) (?:a |some )?time\b", 1.5),
    ],
    "reschedule_appointment": [
        (r"\b(?:re ?schedule|rescheduling|rebook|re book|postpone|push back|push|move|moving|change|switch|shift|bump|"
         r"swap) " + _DET + r"(?:\w+ )?" + f"(?:{_APPT_WORDS}|{_JOB_WORDS}|time|date|day|slot)" + r"\b", 1.6),
        (r"\breschedul\w*\b|\bpostpon\w*\b", 1.9),
        (r"\b(?:different|another|new|later|earlier|other) (?:time|day|date|slot)\b", 1.2),
        (r"\b(?:can we|could we|can i|could i|let us|is it possible to) (?:do|make it|move it|push it|switch it|"
         r"change it|go with|move|push|switch|change|make)\b", 0.9),
        (r"\binstead\b", 0.8),
        (r"\bcan not make it\b|\bwill not be (?:able to make it|home|there)\b", 0.8),
        (r"\b(?:move|push|switch|change|make) (?:it|that|the visit|my appointment|the appointment) (?:to|back|forward|later|earlier)\b", 1.6),
        (r"\b(?:move|push|switch) (?:it|that)\b", 1.2),
    ],
    "cancel_appointment": [
        (r"\bcancel\w* " + _DET + r"(?:\w+ )?(?:\w+ )?" + _APPT_OR_JOB + r"\b", 2.3),
        (r"\bcancel\w*\b(?: \w+){0,6} " + _APPT + r"\b|\b" + _APPT + r"\b(?: \w+){0,4} cancel\w*\b", 1.9),
        (r"\b(?:call off|remove|delete|drop|scrap) " + _DET + r"(?:\w+ )?" + _APPT + r"\b", 2.0),
        (r"\b(?:will not|do not|no longer|does not) need " + _DET + r"(?:\w+ )?" + _APPT_OR_JOB + r"\b", 2.0),
        (r"\bdo not (?:send|need) (?:the |a |anyone|anybody|someone)?(?:technician|tech|engineer|anyone|anybody|someone)?\b(?: \w+){0,3} (?:anymore|any more)\b", 2.0),
        (r"\bdo not send (?:the |a )?(?:technician|tech|engineer)\b", 1.8),
    ],
    "availability": [
        (r"\b(?:available|availability|availabilities|openings?|open slots?|free slots?|slots?|time slots?|vacancy|vacancies)\b", 1.2),
        (r"\bwhat (?:times|days|dates|hours|time slots)\b", 1.2),
        (r"\b(?:your|opening|business|office|working|store) hours\b|\bhours (?:of operation|are you open)\b|\bwhat hours\b", 1.7),
        (r"\bare you (?:guys )?open\b|\bwhen (?:do|are) you (?:guys )?(?:open|close)\b|\bwhat time do you (?:guys )?(?:open|close)\b"
         r"|\b(?:open|closed) (?:on|today|tomorrow|this|at)\b|\bwhen do you open\b|\bare you closed\b", 1.7),
        (r"\b(?:earliest|soonest|next available|first available|next opening)\b", 1.5),
        (r"\bwhen can (?:someone|you|a technician|a tech|somebody|i get|i come|i see)\b|\bwhen is (?:the )?(?:next|earliest)\b", 1.6),
        (r"\bdo you have (?:any )?(?:time|anything|room|space|openings|slots)\b|\banything (?:available|open|free)\b", 1.3),
    ],
    "order_status": [
        (r"\b(?:order|orders|package|packages|parcel|shipment|delivery|deliveries|tracking number|tracking)\b", 1.0),
        (r"\btrack\b|\btracking\b", 1.2),
        (r"\b(?:shipped|delivered|on (?:the|its) way|in the mail|out for delivery|dispatched|in transit)\b", 1.0),
        (r"\b(?:has|have|did|is|was) (?:my|the) \w+ (?:shipped|arrived|delivered|ship|arrive|come|coming)\b", 1.4),
        (r"\b(?:where is|when will|when is|what is the status of|status (?:of|on)|did (?:you|they) (?:send|ship)) (?:my|the)\b", 0.7),
        (r"\b(?:not|never|have not|has not|did not) (?:received|arrived|got|gotten|shown up|come|get)\b", 0.8),
        (r"\b(?:arrive|arriving|come|coming|get here)\b", 0.3),
        (r"\b(?:equipment|modem|router|device|box|kit)\b", 0.3),
    ],
    "knowledge_question": [
        (r"\b(?:policy|policies|warranty|warranties|guarantee|refund|refunds|return|returns|terms|fine print|data cap|"
         r"discount|discounts|coverage|contract length|minimum term|eligib\w*|early termination)\b", 1.2),
        (r"\bdo you (?:guys )?(?:offer|provide|support|sell|service|accept|take|charge|allow|ship|do|cover|work)\b", 1.0),
        (r"\bwhere (?:are you|is your|are your)(?: guys)? (?:located|office|store|based|headquarters)\b|\bwhere are you\b(?: \w+)? (?:located|based)\b", 1.7),
        (r"\bhow (?:does|do) (?:the|your|it|this|that|a|i|you)\b|\bhow long (?:is|does|do|will)\b", 0.9),
        (r"\bdifference between\b|\bwhat is the difference\b|\bcompare\b", 1.5),
        (r"\bis there (?:a|an|any) (?:fee|charge|limit|cap|minimum|contract|penalty|discount)\b", 1.5),
        (r"\bcan i (?:bring|use|keep) (?:my )?own\b", 1.5),
        (r"\b(?:payment methods|forms of payment|payment options|ways to pay|methods of payment)\b|\b(?:accept|take) (?:apple pay|google pay|paypal|credit cards?|checks?|cash)\b", 1.9),
        (r"\b(?:student|senior|seniors|military|veteran|teacher) discount\b|\bdiscount for\b", 1.0),
        (r"\bwhat is (?:your|the) (?:\w+ )?(?:policy|process|procedure)\b", 1.0),
        (r"\binternational\b", 0.6),
    ],
    "human_agent": [
        (r"\b(?:speak|talk|chat|speaking|talking) (?:to|with) (?:a |an |the |your |some |someone|somebody|a real |an actual )?"
         r"(?:real |live |actual )?(?:person|human|agent|representative|rep|someone|somebody|manager|supervisor|operator|"
         r"people|customer service|man|woman|lady|guy|human being|employee)\b", 2.0),
        (r"\b(?:representative|operator|supervisor|manager|agent|human|real person|live person|live agent|actual person|rep)\b", 1.1),
        (r"\b(?:transfer|connect|put) me (?:to|through|with)\b|\bput me through\b|\btransfer me\b", 1.7),
        (r"\b(?:robot|machine|computer|bot|automated)\b", 1.0),
        (r"\bi (?:need|want) (?:a human|a person|a real person|a live person|an agent|a human being)\b", 1.6),
        (r"\bcustomer service\b", 0.5),
    ],
    "goodbye": [
        (r"\b(?:bye|goodbye|bye bye|good bye|see you|see ya|talk to you later|take care|have a (?:good|nice|great|lovely) "
         r"(?:one|day|evening|night|weekend|afternoon))\b", 1.5),
        (r"\b(?:that is|that will be|that would be|that was) (?:all|everything)\b|\bthat is all (?:i|for)\b|\bnothing else\b"
         r"|\bi am (?:done|all set)\b|\ball set\b|\bthat covers it\b|\bno more questions\b|\bthat is everything\b"
         r"|\bthat is it for\b|\bthat is all\b", 1.4),
        (r"\bthat is it\b", 0.9),
        (r"\b(?:thanks|thank you)(?: (?:so|very) much)?(?: for (?:your|the|all) help)?\b", 0.6),
        (r"\b(?:ok|okay|alright|all right) (?:thanks|thank you)\b", 1.1),
        (r"\bfor (?:now|today)\b", 0.4),
    ],
    "affirm": [
        (r"^(?:yes|yeah|yep|yup|ya|yea|yah|sure|correct|right|exactly|absolutely|definitely|certainly|of course|ok|okay|"
         r"alright|affirmative|indeed|perfect|sounds good|please do|go ahead|yes sir|yes maam|you bet|for sure|"
         r"uh huh|mhm|true|that works|agreed)\b", 1.0),
        (r"\b(?:that is (?:right|correct|true|me|it)|sounds good|yes please|that works|works for me|you got it|yes it is)\b", 1.0),
    ],
    "deny": [
        (r"^(?:no|nope|nah|naw|negative|never|not really|no way|nuh uh)\b", 0.9),
        (r"\b(?:that is (?:not right|not correct|wrong|incorrect|not it|not true|not me)|not correct|not right|"
         r"i do not think so|not really|no thanks|no thank you|wrong|incorrect|no no)\b", 1.0),
        (r"\b(?:it|that) (?:is|was) not\b", 0.7),
    ],
}

# Canonical caller phrasings: the fuzzy fallback compares whole utterances with these when no
# pattern is sure; misheard variants of them land on the right intent.
EXAMPLES: dict[str, list[str]] = {
    "greeting": ["hello", "hi there", "good morning", "hey how are you"],
    "billing_balance": ["what is my balance", "how much do i owe", "question about my bill", "when is my bill due"],
    "payment": ["i want to make a payment", "i would like to pay my bill", "can i pay by card"],
    "technical_support": ["my internet is not working", "the internet is down", "my wifi keeps dropping",
                          "i can not log in"],
    "account_info": ["what is my account number", "what plan am i on", "when does my contract end"],
    "update_details": ["i need to change my address", "update my phone number", "update my email"],
    "new_service": ["i want to sign up", "i want to add a new line", "i want to upgrade my plan"],
    "cancellation": ["i want to cancel my service", "cancel my account", "close my account"],
    "complaint": ["i want to make a complaint", "i am not happy with the service", "this is ridiculous"],
    "book_appointment": ["i would like to book an appointment", "i need to make an appointment", "schedule a visit"],
    "reschedule_appointment": ["i need to reschedule my appointment", "move my appointment", "change my appointment"],
    "cancel_appointment": ["cancel my appointment", "i need to cancel my appointment"],
    "availability": ["what times are available", "are you open on saturday", "what are your hours"],
    "order_status": ["where is my order", "where is my package", "track my order"],
    "knowledge_question": ["what is your refund policy", "where are you located", "how does the warranty work"],
    "human_agent": ["speak to a person", "talk to a human", "speak to a representative", "let me talk to an agent"],
    "goodbye": ["goodbye", "that is all thank you", "bye"],
    "affirm": ["yes", "yes that is right"],
    "deny": ["no", "no that is wrong"],
}
