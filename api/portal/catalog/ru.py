"""Русский: the traveller status page (the kiosk's languages)."""

MESSAGES = {
    'Skip to main content':
        'Перейти к содержанию',
    'Language':
        'Язык',
    'Tax-free form status':
        'Статус чека tax-free',
    'Export deadline':
        'Срок вывоза',
    'Form number':
        'Номер чека',
    'Next step':
        'Следующий шаг',
    'Check another form':
        'Проверить другой чек',
    'Check your tax-free form':
        'Проверьте свой чек tax-free',
    'Enter the form number printed next to the QR code and your last name as in your passport.':
        'Введите номер, напечатанный рядом с QR-кодом, и фамилию, как в паспорте.',
    '10 letters and digits, for example NL 7K3Q W9XD':
        '10 букв и цифр, например NL 7K3Q W9XD',
    'Last name':
        'Фамилия',
    'Show status':
        'Показать статус',
    'Validate your form at your last EU airport or port, before you check in your luggage.':
        'Подтвердите чек в последнем аэропорту или порту ЕС, до сдачи багажа.',
    'Not validated yet':
        'Ещё не подтверждён',
    'Customs check needed':
        'Требуется таможенный досмотр',
    'Go to the customs desk with your goods, your passport and this form, before you check in your luggage.':
        'Подойдите к стойке таможни с покупками, паспортом и этим чеком до сдачи багажа.',
    'Export validated':
        'Вывоз подтверждён',
    'Export validated for part of your goods':
        'Вывоз подтверждён для части покупок',
    'Your refund will be paid by {payer}.':
        'Возврат выплатит {payer}.',
    'Refund paid':
        'Возврат выплачен',
    'Nothing more to do. Have a good trip!':
        'Больше ничего делать не нужно. Счастливого пути!',
    'Export refused by customs':
        'Таможня отказала в подтверждении вывоза',
    'This form cannot be validated any more. Ask the shop if you have questions.':
        'Этот чек больше нельзя подтвердить. С вопросами обращайтесь в магазин.',
    'Form cancelled by the shop':
        'Чек аннулирован магазином',
    'This form cannot be used. Ask the shop if you have questions.':
        'Этот чек нельзя использовать. С вопросами обращайтесь в магазин.',
    'Export deadline passed':
        'Срок вывоза истёк',
    'This form can no longer be validated.':
        'Этот чек больше нельзя подтвердить.',
    'Fill this in.':
        'Заполните это поле.',
    'This is not a valid form number. Check it on your form.':
        'Это неверный номер чека. Проверьте его на чеке.',
    'Too many attempts. Wait a minute and try again.':
        'Слишком много попыток. Подождите минуту и попробуйте снова.',
    'We found no form with this number and last name.':
        'Мы не нашли чек с таким номером и фамилией.',
    'This page was open for a long time. Please send it again.':
        'Эта страница была открыта слишком долго. Отправьте форму ещё раз.',
    'Go to the start page':
        'На главную страницу',
}
